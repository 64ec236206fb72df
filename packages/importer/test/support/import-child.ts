// Child process for the kill -9 test: runs (or resumes) an import and never returns early.
import { createDatabase } from '@strata/pg'
import { resumeImport, runImport } from '@strata/importer'

const [url, mode, arg] = process.argv.slice(2) as [string, 'run' | 'resume', string]
const db = await createDatabase({ url, pool: { max: 3 } })
const result =
  mode === 'run'
    ? await runImport(db, JSON.parse(arg), { onJob: (id) => process.stdout.write(`job ${id}\n`) })
    : await resumeImport(db, arg)
process.stdout.write(`done ${JSON.stringify(result.counts)}\n`)
await db.close()

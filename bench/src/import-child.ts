// Runs one Strata import for import.bench.ts in its own process, so peak RSS is the importer's.
import { createDatabase } from '@strata/pg'
import { runImport } from '@strata/importer'

const [url, specJson, optsJson] = process.argv.slice(2) as [string, string, string | undefined]
const db = await createDatabase({ url, pool: { max: 4 } })
const t0 = performance.now()
const result = await runImport(db, JSON.parse(specJson), optsJson ? JSON.parse(optsJson) : {})
const elapsedMs = performance.now() - t0
await db.close()
process.send?.({
  status: result.status,
  reason: result.reason,
  counts: result.counts,
  elapsedMs,
  // resourceUsage().maxRSS is in KiB.
  maxRssBytes: process.resourceUsage().maxRSS * 1024,
})

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { getImportJob, resumeImport, runImport, type ImportProgress } from '@strata/importer'
import { importerTestEnv, type ImporterTestEnv } from './support/importer-db.js'

let env: ImporterTestEnv
beforeAll(async () => {
  env = await importerTestEnv('imppause', `CREATE TABLE t (id int NOT NULL, email text NOT NULL)`)
})
afterAll(async () => env?.close())
beforeEach(async () => {
  await env.db.query('TRUNCATE t')
})

const ROWS = 200_000
const BATCH = 20_000
let path: string
beforeAll(() => {
  const lines = ['id,email']
  for (let i = 1; i <= ROWS; i++) lines.push(`${i},u${i}@x.io`)
  path = env.file('big.csv', lines.join('\n') + '\n')
})
const spec = () => ({
  source: { format: 'csv', path },
  target: { table: 't' },
  columns: { id: { type: 'int' }, email: { type: 'email', required: true } },
  batch: { initial: BATCH, min: BATCH, max: BATCH },
})

describe('pause signal (the CLI’s Ctrl-C)', () => {
  for (const parseWorker of [false, true]) {
    it(`stops within a second and loads at most the batch being written (parseWorker: ${parseWorker})`, async () => {
      const pause = new AbortController()
      let readAtPause = -1
      let pausedAt = 0
      const onProgress = (p: ImportProgress): void => {
        if (pausedAt === 0 && p.read > 0) {
          readAtPause = p.read
          pausedAt = performance.now()
          pause.abort()
        }
      }
      const r = await runImport(env.db, spec(), {
        signal: pause.signal,
        onProgress,
        progressIntervalMs: 10,
        parseWorker,
      })
      const took = performance.now() - pausedAt
      expect(r.status).toBe('paused')
      expect(r.reason).toBe('paused by request')
      expect(took).toBeLessThan(1000)
      // Only the batch in flight when the signal fired commits; prefetched batches are dropped.
      expect(r.counts.read - readAtPause).toBeLessThanOrEqual(BATCH)
      expect(r.counts.read).toBeLessThan(ROWS)
      const job = await getImportJob(env.db, r.jobId)
      expect(job.status).toBe('paused')
      expect(job.checkpoint.records).toBe(r.counts.read)
      const [stored] = await env.rows<{ n: number }>('SELECT count(*)::int AS n FROM t')
      expect(stored?.n).toBe(r.counts.loaded)

      const done = await resumeImport(env.db, r.jobId, { parseWorker })
      expect(done.status).toBe('completed')
      const [after] = await env.rows<{ n: number; d: number }>(
        'SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM t',
      )
      expect(after).toEqual({ n: ROWS, d: ROWS })
    }, 60_000)
  }
})

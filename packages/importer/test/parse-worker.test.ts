import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { listRejects, requestJobAction, resumeImport, runImport } from '@strata/importer'
import { importerTestEnv, type ImporterTestEnv } from './support/importer-db.js'

let env: ImporterTestEnv
beforeAll(async () => {
  env = await importerTestEnv(
    'impwk',
    `CREATE TABLE t (id int PRIMARY KEY, email text NOT NULL, note text)`,
  )
})
afterAll(async () => env?.close())
beforeEach(async () => {
  await env.db.query('TRUNCATE t')
})

const spec = (path: string, extra: Record<string, unknown> = {}) => ({
  source: { format: 'csv', path },
  target: { table: 't', key: ['id'] },
  columns: {
    id: { type: 'int', required: true },
    email: { type: 'email', required: true },
    note: {},
  },
  errors: { maxErrorRate: 1 },
  batch: { initial: 500, min: 500, max: 500 },
  ...extra,
})

function file(name: string, rows: number): string {
  const lines = ['id,email,note']
  for (let i = 1; i <= rows; i++) lines.push(`${i},${i % 50 === 0 ? 'bad' : `u${i}@x.io`},"a\nb"`)
  return env.file(name, lines.join('\n') + '\n')
}

describe('parsing in a piscina worker thread', () => {
  it('gives the same rows, counts and reject lines as parsing in the main thread', async () => {
    const path = file('w.csv', 3000)
    const inThread = await runImport(env.db, spec(path), { parseWorker: false })
    const a = await listRejects(env.db, inThread.jobId)
    await env.db.query('TRUNCATE t')
    const inWorker = await runImport(env.db, spec(path), { parseWorker: true })
    const b = await listRejects(env.db, inWorker.jobId)
    expect(inWorker.status).toBe('completed')
    expect(inWorker.counts).toEqual(inThread.counts)
    expect(inWorker.counts).toEqual({ read: 3000, loaded: 2940, rejected: 60, skipped: 0 })
    expect(b).toEqual(a)
    expect(b[0]!.line).toBe(2 + 2 * 49)
  })

  it('pauses and resumes exactly once', async () => {
    const path = file('wp.csv', 5000)
    const r = await runImport(env.db, spec(path), {
      parseWorker: true,
      onJob: (id) => void requestJobAction(env.db, id, 'pause'),
    })
    expect(r.status).toBe('paused')
    expect(r.counts.read).toBeLessThan(5000)
    const done = await resumeImport(env.db, r.jobId, { parseWorker: true })
    expect(done.counts).toEqual({ read: 5000, loaded: 4900, rejected: 100, skipped: 0 })
    const [row] = await env.rows<{ n: number }>('SELECT count(*)::int AS n FROM t')
    expect(row!.n).toBe(4900)
  })

  it('reports an error raised in the worker as the job failure', async () => {
    const path = file('we.csv', 10)
    const r = await runImport(
      env.db,
      { ...spec(path), columns: { id: { from: 'nope' } } },
      { parseWorker: true },
    )
    expect(r.status).toBe('failed')
    expect(r.reason).toMatch(/the CSV header has no field "nope"/)
  })
})

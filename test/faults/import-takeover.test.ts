// Two Strata processes on one database and one import directory: the one running an import is
// killed with SIGKILL (no pause, no cleanup, its job left 'running'); the other takes the job
// over once its lease has passed, within 30 s, and completes it: every source row once.
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startPrivatePg, type PrivatePg } from '../support/private-pg.js'
import { startStrata, type StrataProcess } from '../support/strata-process.js'
import { probe, report, until } from './support/fault-kit.js'

let pgs: PrivatePg
let dbUrl: string
let dataDir: string
const processes: StrataProcess[] = []
const adminToken = `faults-takeover-${Date.now()}-token`
const operator = { authorization: `Bearer ${adminToken}` }

/** Strata on the private database; both share the data dir, so the import directory too. */
async function strata(): Promise<StrataProcess> {
  const s = await startStrata({ databaseUrl: dbUrl, adminToken, dataDir })
  processes.push(s)
  return s
}

beforeAll(async () => {
  pgs = await startPrivatePg()
  dbUrl = await pgs.createDatabase('strata')
  dataDir = await mkdtemp(join(tmpdir(), 'strata-faults-takeover-'))
  await chmod(dataDir, 0o755)
})

afterAll(async () => {
  for (const s of processes) await s.stop(10_000)
  await pgs?.stop()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

interface Job {
  status: string
  runs: number
  counts: { read: number; loaded: number; rejected: number; skipped: number }
}

describe('an import whose instance died', () => {
  it('is taken over by another instance within 30 s and completed: every source row exactly once', async () => {
    const rows = 300_000
    await pgs.query(
      'CREATE TABLE takeover_target (id bigint NOT NULL, name text NOT NULL, amount int NOT NULL)',
      [],
      'strata',
    )
    const importDir = join(dataDir, 'imports')
    await mkdir(importDir, { recursive: true })
    const lines = ['id,name,amount']
    for (let i = 1; i <= rows; i++) lines.push(`${i},name-${i},${i % 1000}`)
    await writeFile(join(importDir, 'rows.csv'), `${lines.join('\n')}\n`)
    const spec = {
      source: { format: 'csv', path: 'rows.csv', header: true },
      target: { table: 'takeover_target', mode: 'insert' },
      columns: {
        id: { from: 'id', type: 'bigint', required: true },
        name: { from: 'name', type: 'text', required: true },
        amount: { from: 'amount', type: 'int', required: true },
      },
      // Small batches: many checkpoints, so the kill lands between two of them.
      batch: { initial: 2000, min: 1000, max: 4000 },
    }
    const a = await strata()
    const b = await strata()
    const created = await probe(`${a.url}/v1/imports`, { headers: operator, body: { spec } })
    expect(created.status).toBe(202)
    const jobId = (created.body as { job: { id: string } }).job.id
    const job = async (s: StrataProcess): Promise<Job> =>
      ((await probe(`${s.url}/v1/imports/${jobId}`, { headers: operator })).body as { job: Job })
        .job
    await until(
      'the import a fifth done',
      async () => (await job(a)).counts.loaded >= rows / 5,
      120_000,
      25,
    )
    // B scans every 5 s while A runs: a live lease is left alone.
    const beforeKill = await job(b)
    expect(beforeKill).toMatchObject({ status: 'running', runs: 1 })

    a.kill('SIGKILL')
    const killedAt = Date.now()
    await a.exited
    const [atKill] = await pgs.query<{ n: string }>(
      'SELECT count(*) AS n FROM takeover_target',
      [],
      'strata',
    )
    const left = await job(b)
    expect(left.status).toBe('running') // nobody marked it: A died without cleanup
    await until('B to take the job over', async () => (await job(b)).runs === 2, 60_000, 100)
    const takeoverMs = Date.now() - killedAt
    await until(
      'the import completed',
      async () => (await job(b)).status === 'completed',
      180_000,
      200,
    )
    const doneMs = Date.now() - killedAt
    const after = await job(b)
    const [table] = await pgs.query<{ n: string; ids: string; lo: string; hi: string }>(
      'SELECT count(*) AS n, count(DISTINCT id) AS ids, min(id) AS lo, max(id) AS hi FROM takeover_target',
      [],
      'strata',
    )
    report('import-takeover', {
      rows,
      rowsInTableAtKill: Number(atKill!.n),
      jobAtKill: { status: left.status, counts: left.counts, runs: left.runs },
      killToTakeoverMs: takeoverMs,
      killToCompletedMs: doneMs,
      jobAtEnd: { status: after.status, counts: after.counts, runs: after.runs },
      table,
    })
    expect(Number(atKill!.n)).toBe(left.counts.loaded)
    expect(Number(atKill!.n)).toBeLessThan(rows)
    expect(takeoverMs).toBeLessThan(30_000)
    // Taken once: one more run, not one per scan.
    expect(after).toMatchObject({ status: 'completed', runs: 2 })
    expect(after.counts).toMatchObject({ read: rows, loaded: rows, rejected: 0 })
    expect(table).toEqual({ n: String(rows), ids: String(rows), lo: '1', hi: String(rows) })
  })
})

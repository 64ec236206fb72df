import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  getImportJob,
  listRejects,
  requestJobAction,
  resumeImport,
  runImport,
} from '@strata/importer'
import { repoRoot, tsNodeArgs } from '../../../test/support/spawn.js'
import { importerTestEnv, type ImporterTestEnv } from './support/importer-db.js'

const child = fileURLToPath(new URL('./support/import-child.ts', import.meta.url))
let env: ImporterTestEnv
// No unique constraint on purpose: a duplicated row would show up in the counts.
beforeAll(async () => {
  env = await importerTestEnv(
    'impres',
    `CREATE TABLE t (id int NOT NULL, email text NOT NULL, n int)`,
  )
})
afterAll(async () => env?.close())
beforeEach(async () => {
  await env.db.query('TRUNCATE t')
})

const ROWS = 30_000
// Every 97th row has a bad email: rejected in the pipeline, logged exactly once.
const isBad = (i: number) => i % 97 === 0
function makeFile(name: string): string {
  const lines = ['id,email,n']
  for (let i = 1; i <= ROWS; i++)
    lines.push(`${i},${isBad(i) ? 'broken' : `u${i}@x.io`},"${i % 7}"`)
  return env.file(name, lines.join('\n') + '\n')
}
const spec = (path: string, rejectFile: string) => ({
  source: { format: 'csv', path },
  target: { table: 't' },
  columns: { id: { type: 'int' }, email: { type: 'email', required: true }, n: { type: 'int' } },
  errors: { maxErrorRate: 0.5, rejectFile },
  batch: { initial: 300, min: 300, max: 300 },
})

async function checkExactlyOnce(jobId: string, rejectFile: string) {
  const [stats] = await env.rows<{ n: number; d: number; s: string }>(
    'SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, sum(id)::text AS s FROM t',
  )
  const good = Array.from({ length: ROWS }, (_, i) => i + 1).filter((i) => !isBad(i))
  expect(stats).toEqual({
    n: good.length,
    d: good.length,
    s: String(good.reduce((a, b) => a + b, 0)),
  })
  const rejects = await listRejects(env.db, jobId)
  const badLines = Array.from({ length: ROWS }, (_, i) => i + 1)
    .filter(isBad)
    .map((i) => i + 1)
  expect(rejects.map((r) => r.line)).toEqual(badLines)
  const file = readFileSync(rejectFile, 'utf8').trim().split('\n')
  expect(file.slice(1).map((l) => Number(l.split(',')[0]))).toEqual(badLines)
  const job = await getImportJob(env.db, jobId)
  expect(job.status).toBe('completed')
  expect(job.counts).toEqual({
    read: ROWS,
    loaded: good.length,
    rejected: badLines.length,
    skipped: 0,
  })
}

function startChild(args: string[]) {
  const p = spawn(process.execPath, [...tsNodeArgs, child, env.tdb.url, ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  p.stdout.on('data', (d: Buffer) => (out += d.toString()))
  p.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)))
  return { p, exited, out: () => out, err: () => err }
}

async function killAfter(
  jobId: () => string | undefined,
  minRecords: number,
  c: ReturnType<typeof startChild>,
) {
  for (let i = 0; i < 600; i++) {
    const id = jobId()
    if (id) {
      const job = await getImportJob(env.db, id)
      if (job.checkpoint.records >= minRecords) break
    }
    await sleep(20)
  }
  c.p.kill('SIGKILL')
  await c.exited
}

describe('crash and resume', () => {
  it('kill -9 mid-import, twice, then resume: exactly the good rows, each once', async () => {
    const path = makeFile('kill.csv')
    const rejectFile = env.file('kill.rejects.csv', '')
    const first = startChild(['run', JSON.stringify(spec(path, rejectFile))])
    const idOf = () => /job (\S+)/.exec(first.out())?.[1]
    await killAfter(idOf, 3000 + Math.floor(Math.random() * 6000), first)
    const jobId = idOf()
    expect(jobId, first.err()).toBeDefined()
    const mid = await getImportJob(env.db, jobId!)
    expect(mid.status).toBe('running') // killed: nobody marked it
    expect(mid.checkpoint.records).toBeGreaterThan(0)
    expect(mid.checkpoint.records).toBeLessThan(ROWS)
    expect(mid.checkpoint.records % 300).toBe(0)

    const second = startChild(['resume', jobId!])
    await killAfter(() => jobId, mid.checkpoint.records + 3000, second)
    const mid2 = await getImportJob(env.db, jobId!)
    expect(mid2.checkpoint.records).toBeGreaterThan(mid.checkpoint.records)

    const result = await resumeImport(env.db, jobId!)
    expect(result.status).toBe('completed')
    await checkExactlyOnce(jobId!, rejectFile)
  }, 60_000)

  it('refuses to resume when the source file changed', async () => {
    const path = makeFile('changing.csv')
    const r = await runImport(env.db, spec(path, env.file('c.rejects.csv', '')), {
      onJob: (id) => void requestJobAction(env.db, id, 'pause'),
    })
    expect(r.status).toBe('paused')
    env.file('changing.csv', 'id,email,n\n1,a@x.io,1\n')
    const again = await resumeImport(env.db, r.jobId)
    expect(again.status).toBe('failed')
    expect(again.reason).toMatch(/changed since it started/)
  })
})

describe('pause, resume, cancel', () => {
  it('pauses at the next batch boundary and resumes to exactly-once completion', async () => {
    const path = makeFile('pause.csv')
    const rejectFile = env.file('pause.rejects.csv', '')
    // The request lands before the first batch commits: the job pauses right after it.
    const r = await runImport(env.db, spec(path, rejectFile), {
      onJob: (id) => void requestJobAction(env.db, id, 'pause'),
    })
    expect(r.status).toBe('paused')
    expect(r.reason).toBe('paused by request')
    const job = await getImportJob(env.db, r.jobId)
    expect(job.status).toBe('paused')
    expect(job.checkpoint.records).toBeGreaterThanOrEqual(300)
    expect(job.checkpoint.records).toBeLessThan(ROWS)
    const done = await resumeImport(env.db, r.jobId)
    expect(done.status).toBe('completed')
    await checkExactlyOnce(r.jobId, rejectFile)
  })

  it('cancels a running job; a cancelled job cannot be resumed; a paused job cancels at once', async () => {
    const path = makeFile('cancel.csv')
    const r = await runImport(env.db, spec(path, env.file('x.rejects.csv', '')), {
      onJob: (id) => void requestJobAction(env.db, id, 'cancel'),
    })
    expect(r.status).toBe('cancelled')
    expect((await getImportJob(env.db, r.jobId)).status).toBe('cancelled')
    await expect(resumeImport(env.db, r.jobId)).rejects.toMatchObject({
      code: 'STRATA_IMPORT_JOB_NOT_RESUMABLE',
    })

    const p = await runImport(env.db, spec(path, env.file('y.rejects.csv', '')), {
      onJob: (id) => void requestJobAction(env.db, id, 'pause'),
    })
    expect(p.status).toBe('paused')
    const c = await requestJobAction(env.db, p.jobId, 'cancel')
    expect(c.status).toBe('cancelled')
  })
})

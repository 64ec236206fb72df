import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getImportJob, listChildJobs, listRejects, planChunks } from '@strata/importer'
import { enqueueChunkedImport } from '@strata/importer/queue'
import { repoRoot, tsNodeArgs } from '../../../test/support/spawn.js'
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test/support/redis.js'
import { importerTestEnv, type ImporterTestEnv } from './support/importer-db.js'

const workerScript = fileURLToPath(new URL('./support/import-worker-child.ts', import.meta.url))
let env: ImporterTestEnv
const prefix = uniquePrefix('import')
beforeAll(async () => {
  env = await importerTestEnv(
    'impq',
    `CREATE TABLE t (id int NOT NULL, email text NOT NULL, note text)`,
  )
})
afterAll(async () => {
  await env?.close()
  await deletePrefix(prefix)
})

const r = new URL(redisUrl())
const connection = { host: r.hostname, port: Number(r.port || 6379), maxRetriesPerRequest: null }

interface WorkerProcess {
  p: ChildProcess
  out(): string
  exited: Promise<unknown>
}

/** Starts n chunk-worker processes and waits until each says it is ready. */
async function startWorkers(n: number): Promise<WorkerProcess[]> {
  const workers = Array.from({ length: n }, () => {
    const p = spawn(
      process.execPath,
      [...tsNodeArgs, workerScript, env.tdb.url, redisUrl(), prefix],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => (out += d.toString()))
    return { p, out: () => out, exited: new Promise((res) => p.on('exit', res)) }
  })
  try {
    for (let i = 0; i < 600 && !workers.every((w) => w.out().includes('ready')); i++)
      await sleep(50)
    expect(
      workers.every((w) => w.out().includes('ready')),
      workers.map((w) => w.out()).join('\n'),
    ).toBe(true)
  } catch (err) {
    await stopWorkers(workers)
    throw err
  }
  return workers
}

/** SIGTERM, a grace period, then SIGKILL for any worker still running. */
async function stopWorkers(workers: WorkerProcess[]): Promise<void> {
  for (const w of workers) w.p.kill('SIGTERM')
  await Promise.all(workers.map((w) => Promise.race([w.exited, sleep(5000)])))
  for (const w of workers) w.p.kill('SIGKILL')
}

describe('planChunks', () => {
  it('cuts on record boundaries only (never inside a quoted newline) and keeps line numbers', async () => {
    const lines = ['id,email,note']
    for (let i = 1; i <= 200; i++) lines.push(`${i},u${i}@x.io,"multi\nline ${i}"`)
    const path = env.file('plan.csv', lines.join('\n') + '\n')
    const chunks = await planChunks({ format: 'csv', path }, path, 7)
    expect(chunks.length).toBe(7)
    const content = readFileSync(path)
    expect(chunks[0]!.start).toBe('id,email,note\n'.length)
    expect(chunks[0]!.firstLine).toBe(2)
    for (const [i, c] of chunks.entries()) {
      expect(c.header).toEqual(['id', 'email', 'note'])
      if (i > 0) expect(c.start).toBe(chunks[i - 1]!.end)
      // Every chunk starts at a record: "<id>,u<id>@x.io" on line 2 + 2 * (id - 1).
      const head = content.subarray(c.start, c.start + 20).toString()
      const id = Number(/^(\d+),u\1@x\.io/.exec(head)?.[1])
      expect(c.firstLine).toBe(2 + 2 * (id - 1))
    }
    expect(chunks.at(-1)!.end).toBe(content.length)
  })
})

describe('chunked import on BullMQ', () => {
  it('3 worker processes load every good row exactly once, with file line numbers', async () => {
    const ROWS = 9000
    const lines = ['id,email,note']
    for (let i = 1; i <= ROWS; i++)
      lines.push(`${i},${i % 101 === 0 ? 'bad' : `u${i}@x.io`},"n\n${i}"`)
    const path = env.file('big.csv', lines.join('\n') + '\n')
    const rejectFile = env.file('big.rejects.csv', '')
    const workers = await startWorkers(3)
    try {
      const { jobId, chunkIds } = await enqueueChunkedImport(
        env.db,
        {
          source: { format: 'csv', path },
          target: { table: 't' },
          columns: { id: { type: 'int' }, email: { type: 'email', required: true }, note: {} },
          errors: { maxErrorRate: 0.5, rejectFile },
          batch: { initial: 200, min: 100, max: 400 },
          workers: 6,
        },
        { connection, prefix },
      )
      expect(chunkIds).toHaveLength(6)
      let job = await getImportJob(env.db, jobId)
      for (let i = 0; i < 600 && job.status === 'running'; i++) {
        await sleep(50)
        job = await getImportJob(env.db, jobId)
      }
      expect(job.status, workers.map((w) => w.out()).join('\n')).toBe('completed')
      const bad = Array.from({ length: ROWS }, (_, i) => i + 1).filter((i) => i % 101 === 0)
      expect(job.counts).toEqual({
        read: ROWS,
        loaded: ROWS - bad.length,
        rejected: bad.length,
        skipped: 0,
      })
      const [stats] = await env.rows<{ n: number; d: number }>(
        'SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM t',
      )
      expect(stats).toEqual({ n: ROWS - bad.length, d: ROWS - bad.length })
      // Line of record i: header is line 1, each record spans 2 lines.
      expect((await listRejects(env.db, jobId)).map((x) => x.line)).toEqual(
        bad.map((i) => 2 + 2 * (i - 1)),
      )
      // Header + one record per reject; each record's note field spans two lines.
      expect(readFileSync(rejectFile, 'utf8').trim().split('\n')).toHaveLength(1 + 2 * bad.length)
      const children = await listChildJobs(env.db, jobId)
      expect(children.every((c) => c.status === 'completed')).toBe(true)
      // The chunks were spread over more than one process.
      const pids = new Set(
        workers.flatMap((w) => [...w.out().matchAll(/^chunk \S+ (\d+)$/gm)].map((m) => m[1])),
      )
      expect(pids.size).toBeGreaterThan(1)
    } finally {
      await stopWorkers(workers)
    }
  }, 60_000)

  it('a worker killed mid-chunk: the chunk is redelivered and resumes from its checkpoint', async () => {
    await env.db.query('TRUNCATE t')
    const ROWS = 24_000
    const lines = ['id,email,note']
    for (let i = 1; i <= ROWS; i++) lines.push(`${i},u${i}@x.io,n${i}`)
    const path = env.file('kill.csv', lines.join('\n') + '\n')
    const workers = await startWorkers(3)
    try {
      const { jobId } = await enqueueChunkedImport(
        env.db,
        {
          source: { format: 'csv', path },
          target: { table: 't' },
          columns: { id: { type: 'int' }, email: { type: 'email', required: true }, note: {} },
          batch: { initial: 200, min: 200, max: 200 },
          workers: 3,
        },
        { connection, prefix },
      )
      // Kill the process running a chunk that has committed a few batches.
      let killed: { chunk: string; records: number } | undefined
      for (let i = 0; i < 400 && !killed; i++) {
        for (const c of await listChildJobs(env.db, jobId)) {
          if (c.status !== 'running' || c.checkpoint.records < 1000) continue
          const w = workers.find((x) => x.out().includes(`start ${c.id} ${x.p.pid}`))
          if (!w) continue
          w.p.kill('SIGKILL')
          await w.exited
          killed = { chunk: c.id, records: (await getImportJob(env.db, c.id)).checkpoint.records }
          break
        }
        if (!killed) await sleep(25)
      }
      expect(killed, workers.map((w) => w.out()).join('\n')).toBeDefined()
      expect(killed!.records).toBeLessThan(8000)
      let job = await getImportJob(env.db, jobId)
      for (let i = 0; i < 1200 && job.status === 'running'; i++) {
        await sleep(50)
        job = await getImportJob(env.db, jobId)
      }
      expect(job.status, workers.map((w) => w.out()).join('\n')).toBe('completed')
      expect(job.counts).toEqual({ read: ROWS, loaded: ROWS, rejected: 0, skipped: 0 })
      const [stats] = await env.rows<{ n: number; d: number }>(
        'SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM t',
      )
      expect(stats).toEqual({ n: ROWS, d: ROWS })
      const chunk = await getImportJob(env.db, killed!.chunk)
      expect(chunk.runs).toBeGreaterThanOrEqual(2)
    } finally {
      await stopWorkers(workers)
    }
  }, 90_000)
})

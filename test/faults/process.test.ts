// Faults of the Strata process itself, with a private PostgreSQL: kill -9 mid-ingest and
// mid-import (restart, resume: exactly once), SIGTERM under load (drain, exit 0, nothing
// acknowledged lost), and answers lost after COMMIT (the client resends: one row each).
import { connect } from 'node:net'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  checkExactlyOnce,
  eventFor,
  IngestLoad,
  postBatch,
  storedCounts,
} from '../support/ingest-load.js'
import { startPrivatePg, type PrivatePg } from '../support/private-pg.js'
import {
  createProject,
  startStrata,
  type ProjectKeys,
  type StrataProcess,
} from '../support/strata-process.js'
import { startDropProxy } from './support/drop-proxy.js'
import { probe, report, sampler, sleep, tally, until, type Probe } from './support/fault-kit.js'

let pgs: PrivatePg
let dbUrl: string
let dataDir: string
const processes: StrataProcess[] = []
const adminToken = `faults-process-${Date.now()}-token`

/** Strata on the private database; every instance shares the data dir (the import directory). */
async function strata(port = 0, env: Record<string, string> = {}): Promise<StrataProcess> {
  const s = await startStrata({ databaseUrl: dbUrl, port, adminToken, dataDir, env })
  processes.push(s)
  return s
}

beforeAll(async () => {
  pgs = await startPrivatePg()
  dbUrl = await pgs.createDatabase('strata')
  dataDir = await mkdtemp(join(tmpdir(), 'strata-faults-process-'))
  await chmod(dataDir, 0o755)
})

afterAll(async () => {
  for (const s of processes) await s.stop(10_000)
  await pgs?.stop()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

async function exactlyOnce(keys: ProjectKeys, load: IngestLoad) {
  const c = await pgs.connect('strata')
  const r = await checkExactlyOnce(c, keys.projectId, load).finally(() => c.end())
  return r
}

function assertExactlyOnce(r: Awaited<ReturnType<typeof exactlyOnce>>, load: IngestLoad) {
  expect(load.batches.filter((b) => b.givenUp)).toEqual([])
  expect(r.missing).toEqual([])
  expect(r.duplicated).toEqual([])
  expect(r.unknown).toEqual([])
  expect(r.stored).toBe(load.sentIds().length)
}

describe('the Strata process killed, stopped, or its answers lost', () => {
  it('7a. kill -9 mid-ingest: acknowledged events present once; resent ones after the restart stored once', async () => {
    let s = await strata()
    const port = s.port
    const keys = await createProject(s, 'kill9-ingest')
    // Larger batches: more of them are mid-flush when the process dies.
    const load = new IngestLoad({
      target: () => s.url,
      writeKey: keys.writeKey,
      clients: 8,
      batchSize: 50,
    }).start()
    await load.waitAcked(30)
    const killedAt = Date.now()
    s.kill('SIGKILL')
    const exit = await s.exited
    const ackedBeforeKill = load.ackedIds().length
    // What was acknowledged before the restart is already there, exactly once.
    const c = await pgs.connect('strata')
    const early = await storedCounts(c, keys.projectId, load.prefix).finally(() => c.end())
    const ackedEarly = load.ackedBatches().flatMap((b) => b.messageIds)
    const missingEarly = ackedEarly.filter((id) => (early.get(id) ?? 0) !== 1)
    // Supervisor restart on the same port; the clients resend what was not acknowledged.
    s = await strata(port)
    const restartedAt = Date.now()
    await until('an acknowledged batch after the restart', () => !!load.firstAckAfter(restartedAt))
    await load.waitAcked(20)
    await load.finish()
    const r = await exactlyOnce(keys, load)
    // A resent batch answered with duplicates: it had been committed, but its answer died with
    // the process.
    const committedUnanswered = load.batches.filter(
      (b) => b.attempts > 1 && (b.duplicates ?? 0) > 0,
    ).length
    report('kill9-ingest', {
      exit,
      ackedBeforeKill,
      storedAtKill: early.size,
      restartMs: restartedAt - killedAt,
      firstAckAfterRestartMs: load.firstAckAfter(restartedAt)!.end - restartedAt,
      resentBatches: load.retriedBatches().length,
      committedButUnanswered: committedUnanswered,
      acked: r.acked,
      stored: r.stored,
      duplicated: r.duplicated.length,
      errors: load.errors(),
      load: load.summary({ from: killedAt, to: restartedAt }),
    })
    expect(exit.signal).toBe('SIGKILL')
    expect(missingEarly).toEqual([])
    expect(load.retriedBatches().length).toBeGreaterThan(0)
    assertExactlyOnce(r, load)
    await s.stop()
  })

  it('7b. kill -9 mid-import, restart, resume: every source row in the table exactly once', async () => {
    const rows = 300_000
    await pgs.query(
      'CREATE TABLE import_target (id bigint NOT NULL, name text NOT NULL, amount int NOT NULL)',
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
      target: { table: 'import_target', mode: 'insert', key: ['id'] },
      columns: {
        id: { from: 'id', type: 'bigint', required: true },
        name: { from: 'name', type: 'text', required: true },
        amount: { from: 'amount', type: 'int', required: true },
      },
      // Small batches: many checkpoints, so the kill lands between two of them.
      batch: { initial: 2000, min: 1000, max: 4000 },
    }
    let s = await strata()
    const port = s.port
    const operator = { authorization: `Bearer ${adminToken}` }
    const created = await probe(`${s.url}/v1/imports`, { headers: operator, body: { spec } })
    expect(created.status).toBe(202)
    const jobId = (created.body as { job: { id: string } }).job.id
    type Job = {
      status: string
      runs: number
      counts: { read: number; loaded: number; rejected: number; skipped: number }
      checkpoint: unknown
    }
    const job = async (base: string): Promise<Job> =>
      ((await probe(`${base}/v1/imports/${jobId}`, { headers: operator })).body as { job: Job }).job
    // Kill once a fifth of the rows is in: mid-import for certain.
    await until(
      'the import a fifth done',
      async () => (await job(s.url)).counts.loaded >= rows / 5,
      120_000,
      25,
    )
    s.kill('SIGKILL')
    await s.exited
    const [atKill] = await pgs.query<{ n: string }>(
      'SELECT count(*) AS n FROM import_target',
      [],
      'strata',
    )
    s = await strata(port)
    const before = await job(s.url)
    const resumed = await probe(`${s.url}/v1/imports/${jobId}/resume`, {
      headers: operator,
      body: {},
    })
    const finished = await until(
      'the import completed',
      async () => (await job(s.url)).status === 'completed',
      180_000,
      200,
    )
    const after = await job(s.url)
    const [table] = await pgs.query<{ n: string; ids: string; lo: string; hi: string }>(
      'SELECT count(*) AS n, count(DISTINCT id) AS ids, min(id) AS lo, max(id) AS hi FROM import_target',
      [],
      'strata',
    )
    report('kill9-import', {
      rows,
      rowsInTableAtKill: Number(atKill!.n),
      jobAfterKill: { status: before.status, counts: before.counts, checkpoint: before.checkpoint },
      resume: resumed.status,
      resumeToCompletedMs: finished,
      jobAtEnd: { status: after.status, counts: after.counts, runs: after.runs },
      table,
    })
    // The checkpoint commits with the rows: the table held exactly what the job had recorded.
    expect(Number(atKill!.n)).toBe(before.counts.loaded)
    expect(Number(atKill!.n)).toBeLessThan(rows)
    expect(resumed.status).toBe(202)
    expect(after.counts).toMatchObject({ read: rows, loaded: rows, rejected: 0 })
    expect(table).toEqual({ n: String(rows), ids: String(rows), lo: '1', hi: String(rows) })
    await s.stop()
  })

  it('8. SIGTERM under load: in-flight requests answered, new ones 503 or refused, exit 0, nothing acknowledged lost', async () => {
    let s = await strata()
    const port = s.port
    const keys = await createProject(s, 'sigterm')
    const clients = 6
    const load = new IngestLoad({ target: () => s.url, writeKey: keys.writeKey, clients }).start()
    await load.waitAcked(30)
    // Hold the flushes on a lock so that every client has a request in flight at SIGTERM.
    const locker = await pgs.connect('strata')
    await locker.query('BEGIN')
    await locker.query('LOCK TABLE event_dedup IN ACCESS EXCLUSIVE MODE')
    await sleep(800)
    const termAt = Date.now()
    s.kill('SIGTERM')
    // New requests while draining, each on its own connection.
    let lateSeq = 0
    const late = sampler(async () => {
      const messageId = `late-${++lateSeq}`
      const a = await postBatch(s.url, keys.writeKey, [eventFor(messageId, 0)], 30_000)
      return { ...a, messageId }
    }, 100)
    await sleep(2000)
    await locker.query('ROLLBACK')
    await locker.end()
    const exit = await Promise.race([
      s.exited,
      sleep(40_000).then(() => ({ code: null, signal: 'timeout' as const })),
    ])
    const exitedAt = Date.now()
    const lateAnswers = await late.stop()
    const inFlight = load.attempts.filter((a) => a.start < termAt - 300 && a.end > termAt)
    // Back on the same port: the clients resend what the drain refused.
    s = await strata(port)
    await load.waitAcked(10)
    await load.finish()
    const r = await exactlyOnce(keys, load)
    const drainAnswers = lateAnswers.filter((a) => a.start < exitedAt)
    report('sigterm-drain', {
      exit,
      drainMs: exitedAt - termAt,
      inFlightAtSigterm: tally(
        inFlight.map((a) => ({ ...a, at: a.start, ms: a.end - a.start }) as Probe),
      ),
      newRequestsDuringDrain: tally(
        drainAnswers.map((a) => ({ ...a, at: a.start, ms: a.end - a.start }) as Probe),
      ),
      acked: r.acked,
      stored: r.stored,
      duplicated: r.duplicated.length,
      errors: load.errors(),
      load: load.summary({ from: termAt, to: exitedAt }),
    })
    expect(exit).toEqual({ code: 0, signal: null })
    // Every request in flight at SIGTERM got its answer: committed, 202.
    expect(inFlight.length).toBe(clients)
    for (const a of inFlight) expect(a.status).toBe(202)
    // Requests sent after SIGTERM: 503 + Retry-After or the connection refused/closed, except
    // one that reached the server before it handled the signal: that one is a 202, and stored.
    for (const a of drainAnswers) {
      if (a.status === 0) expect(a.error).toMatch(/ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET/)
      else if (a.status !== 202) {
        expect(a.status).toBe(503)
        expect(a.retryAfter).toBeTruthy()
      }
    }
    const lateAcked = drainAnswers.filter((a) => a.status === 202).map((a) => a.messageId)
    const lc = await pgs.connect('strata')
    const lateStored = await storedCounts(lc, keys.projectId, 'late').finally(() => lc.end())
    for (const id of lateAcked) expect(lateStored.get(id)).toBe(1)
    assertExactlyOnce(r, load)
    await s.stop()
  })

  it('9. answers lost after COMMIT (proxy cuts the answer; client cuts its socket): resent batches stored once', async () => {
    const s = await strata()
    const keys = await createProject(s, 'lost-answer')
    // (a) A proxy cuts a third of the answers on their way back for 4 s; the SDK resends.
    const proxy = await startDropProxy(() => s.port)
    const load = new IngestLoad({ target: () => proxy.url, writeKey: keys.writeKey, clients: 6 })
    load.start()
    await load.waitAcked(10)
    proxy.dropRate = 1 / 3
    const from = Date.now()
    await sleep(4000)
    proxy.dropRate = 0
    const to = Date.now()
    await load.waitAcked(10)
    await load.finish()
    await proxy.close()
    const r = await exactlyOnce(keys, load)
    const resentAsDuplicates = load.batches.filter((b) => b.attempts > 1 && b.duplicates).length

    // (b) The client writes a batch and closes its socket at once, then resends it over a new
    // connection while the first copy may still be in flight: a race between the two copies.
    const batches = Array.from({ length: 40 }, (_, b) =>
      Array.from({ length: 10 }, (_, i) => eventFor(`cut-${b}-${i}`, i)),
    )
    const cut = await Promise.all(
      batches.map(async (events) => {
        await sendAndHangUp(s.port, keys.writeKey, events)
        return postBatch(s.url, keys.writeKey, events)
      }),
    )
    await sleep(500) // let the hung-up copies finish
    const c = await pgs.connect('strata')
    const { rows } = await c
      .query<{ message_id: string; n: string }>(
        `SELECT message_id, count(*) AS n FROM (
           SELECT message_id FROM login_events WHERE project_id = $1 AND message_id LIKE 'cut-%'
           UNION ALL SELECT message_id FROM activity_logs WHERE project_id = $1 AND message_id LIKE 'cut-%'
           UNION ALL SELECT message_id FROM events WHERE project_id = $1 AND message_id LIKE 'cut-%'
         ) x GROUP BY message_id`,
        [keys.projectId],
      )
      .finally(() => c.end())
    const answers = cut.map((a) => a.body as { accepted: number; duplicates: number })
    report('lost-answer', {
      proxy: { dropped: proxy.dropped, connections: proxy.connections },
      resentAsDuplicates,
      acked: r.acked,
      stored: r.stored,
      duplicated: r.duplicated.length,
      errors: load.errors(),
      load: load.summary({ from, to }),
      hangUp: {
        batches: batches.length,
        resentAnswers: tally(cut.map((a) => ({ ...a, at: a.start, ms: a.end - a.start }))),
        acceptedByResend: answers.reduce((n, a) => n + (a?.accepted ?? 0), 0),
        duplicatesByResend: answers.reduce((n, a) => n + (a?.duplicates ?? 0), 0),
        storedIds: rows.length,
        maxCopies: Math.max(0, ...rows.map((x) => Number(x.n))),
      },
    })
    expect(proxy.dropped).toBeGreaterThan(0)
    // The answers the proxy cut were of committed batches: their resends came back as duplicates.
    expect(resentAsDuplicates).toBeGreaterThan(0)
    assertExactlyOnce(r, load)
    for (const a of cut) expect(a.status).toBe(202)
    expect(rows.length).toBe(400)
    expect(rows.filter((x) => x.n !== '1')).toEqual([])
    await s.stop()
  })
})

/** Writes one POST /v1/events/batch on a raw socket and closes it without reading the answer. */
function sendAndHangUp(port: number, writeKey: string, events: unknown[]): Promise<void> {
  const body = JSON.stringify({ events })
  const request =
    `POST /v1/events/batch HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
    `Authorization: Bearer ${writeKey}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.end(request, () => {
        socket.destroy()
        resolve()
      })
    })
    socket.on('error', reject)
  })
}

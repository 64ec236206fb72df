import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import {
  EventValidator,
  GroupCommitWriter,
  ProjectStore,
  type EventRow,
  type LoginRow,
} from '@strata/events'
import { countRows, eventsTestDb, type EventsTestDb } from './support/events-db.js'

let t: EventsTestDb
let projectId: string
const validator = new EventValidator()

beforeAll(async () => {
  t = await eventsTestDb('evw')
  const store = new ProjectStore(t.db)
  projectId = (await store.createProject('writer')).project.id
})
afterAll(async () => {
  await t?.close()
})

function login(messageId: string, over: Record<string, unknown> = {}): LoginRow {
  return loginFor(projectId, messageId, over)
}

function loginFor(pid: string, messageId: string, over: Record<string, unknown> = {}): LoginRow {
  const r = validator.login(
    { messageId, userId: 'u1', method: 'email', success: true, ...over },
    {
      projectId: pid,
      receivedAt: Date.now(),
      userAgent:
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
    },
  )
  if (!r.ok) throw r.error
  return r.row
}

describe('GroupCommitWriter', () => {
  it('commits rows, dedups within a batch and across writes, keeps the first write', async () => {
    const w = new GroupCommitWriter(t.db)
    await w.start()
    const res = await w.write([login('a1'), login('a2'), login('a1', { userId: 'other' })])
    expect(res.map((r) => r.status)).toEqual(['inserted', 'inserted', 'duplicate'])
    const again = await w.write([login('a1', { userId: 'changed' })])
    expect(again[0]!.status).toBe('duplicate')
    const rows = await t.db.query(
      'SELECT user_id, device_type, browser, os FROM login_events WHERE message_id = $1',
      ['a1'],
    )
    expect(rows.rows).toEqual([
      { user_id: 'u1', device_type: 'desktop', browser: 'Chrome', os: 'Windows' },
    ])
    const roll = await t.db.query<{ count: string }>(
      'SELECT sum(count) AS count FROM login_rollups_hourly WHERE project_id = $1',
      [projectId],
    )
    expect(Number(roll.rows[0]!.count)).toBe(2)
    await w.close()
  })

  for (const copyThreshold of [0, 10_000]) {
    it(`stores tricky strings exactly (${copyThreshold ? 'INSERT' : 'COPY'} path)`, async () => {
      const w = new GroupCommitWriter(t.db, { copyThreshold })
      // Also what the inlined literals must survive: dollar-quote tags, quotes, placeholders.
      const tricky =
        'tab\there\nnew line\r\\backslash \\N "quoted" émoji 😀 $s$ $$ it\'s $1 $s0$ $s'
      const a = validator.activity(
        {
          messageId: `tr-${copyThreshold}`,
          userId: tricky,
          action: 'edit',
          metadata: { s: tricky, n: [1, 2.5, null, true] },
        },
        { projectId, receivedAt: Date.now() },
      )
      const e = validator.segment(
        {
          type: 'track',
          event: tricky,
          anonymousId: 'a',
          messageId: `tr-e-${copyThreshold}`,
          properties: { s: tricky },
        },
        { projectId, receivedAt: Date.now() },
      )
      if (!a.ok || !e.ok) throw new Error('invalid fixture')
      const res = await w.write([
        a.row,
        e.row,
        login(`tr-l-${copyThreshold}`, { failureReason: tricky, success: false }),
      ])
      expect(res.map((r) => r.status)).toEqual(['inserted', 'inserted', 'inserted'])
      const row = await t.db.query(
        'SELECT user_id, metadata FROM activity_logs WHERE message_id = $1',
        [`tr-${copyThreshold}`],
      )
      expect(row.rows[0]).toEqual({
        user_id: tricky,
        metadata: { s: tricky, n: [1, 2.5, null, true] },
      })
      const ev = await t.db.query('SELECT name, properties FROM events WHERE message_id = $1', [
        `tr-e-${copyThreshold}`,
      ])
      expect(ev.rows[0]).toEqual({ name: tricky, properties: { s: tricky } })
      const lg = await t.db.query('SELECT failure_reason FROM login_events WHERE message_id = $1', [
        `tr-l-${copyThreshold}`,
      ])
      expect(lg.rows[0]).toEqual({ failure_reason: tricky })
      await w.close()
    })
  }

  it('large flushes: optimistic COPY of keys, falling back on a repeat', async () => {
    const w = new GroupCommitWriter(t.db, { copyThreshold: 1 })
    const first = await w.write([
      login('opt-1', { sessionId: 'opt-s1' }),
      login('opt-2', { sessionId: 'opt-s2' }),
      login('opt-3'),
    ])
    expect(first.map((r) => r.status)).toEqual(['inserted', 'inserted', 'inserted'])
    // A repeated message id: the COPY fails, the safe path runs.
    const second = await w.write([
      login('opt-2', { userId: 'changed' }),
      login('opt-4', { sessionId: 'opt-s1' }),
      login('opt-5', { sessionId: 'opt-s5' }),
    ])
    expect(second.map((r) => r.status)).toEqual(['duplicate', 'inserted', 'inserted'])
    const rows = await t.db.query(
      `SELECT message_id, user_id FROM login_events WHERE message_id LIKE 'opt-%' ORDER BY message_id`,
    )
    expect(rows.rows.map((r) => r.message_id)).toEqual([
      'opt-1',
      'opt-2',
      'opt-3',
      'opt-4',
      'opt-5',
    ])
    expect(rows.rows[1]).toEqual({ message_id: 'opt-2', user_id: 'u1' })
    // A login's sessionId is an attribute of the login: it opens no session.
    const sessions = await t.db.query(
      `SELECT session_id FROM user_sessions WHERE session_id LIKE 'opt-%'`,
    )
    expect(sessions.rows).toEqual([])
    const refs = await t.db.query(
      `SELECT session_id FROM login_events WHERE message_id IN ('opt-4', 'opt-5') ORDER BY 1`,
    )
    expect(refs.rows.map((r) => r.session_id)).toEqual(['opt-s1', 'opt-s5'])
    await w.close()
  })

  it('groups concurrent writers into few transactions', async () => {
    const w = new GroupCommitWriter(t.db)
    const before = w.stats().flushes
    await Promise.all(Array.from({ length: 200 }, (_, i) => w.write([login(`g${i}`)])))
    expect(w.stats().inserted).toBe(200)
    expect(w.stats().flushes - before).toBeLessThan(50)
    await w.close()
  })

  it('concurrent flushes (two writers, split queues) store each id once and count it once', async () => {
    // Two writers = two service instances; copyThreshold 4 makes queues split across both flush
    // slots and mixes the one-round-trip, COPY and conflict-safe paths. Overlapping ids race.
    const store = new ProjectStore(t.db)
    const pid = (await store.createProject('concurrent')).project.id
    const opts = { copyThreshold: 4, maxConcurrentFlushes: 2 }
    const writers = [new GroupCommitWriter(t.db, opts), new GroupCommitWriter(t.db, opts)]
    const ids = (i: number) =>
      Array.from({ length: 12 }, (_, k) => `cc-${(i * 7 + k) % 60}`).map((id, k) =>
        loginFor(pid, id, { userId: `cu${k % 3}`, sessionId: `cs-${id}` }),
      )
    const writes = Array.from({ length: 40 }, (_, i) => writers[i % 2]!.write(ids(i)))
    const results = (await Promise.all(writes)).flat()
    const inserted = results.filter((r) => r.status === 'inserted').length
    const dups = results.filter((r) => r.status === 'duplicate').length
    const stored = await t.db.query<{ n: number; d: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT message_id)::int AS d FROM login_events WHERE message_id LIKE 'cc-%'`,
    )
    expect(stored.rows[0]).toEqual({ n: 60, d: 60 })
    expect(inserted).toBe(60)
    expect(dups).toBe(results.length - 60)
    expect(writers[0]!.stats().flushes + writers[1]!.stats().flushes).toBeGreaterThan(2)
    // Rollups count each stored row exactly once.
    const rolled = await t.db.query<{ n: number }>(
      `SELECT coalesce(sum(count), 0)::int AS n FROM login_rollups_hourly WHERE project_id = $1`,
      [pid],
    )
    const raw = await countRows(t.db, 'login_events', pid)
    expect(rolled.rows[0]!.n).toBe(raw)
    const sessions = await t.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM user_sessions WHERE session_id LIKE 'cs-cc-%'`,
    )
    expect(sessions.rows[0]!.n).toBe(0) // logins open no session
    await Promise.all(writers.map((w) => w.close()))
  })

  it('creates the partition for a backfilled month on demand', async () => {
    const w = new GroupCommitWriter(t.db)
    const old = validator.activity(
      { messageId: 'old1', userId: 'u', action: 'view', timestamp: '2025-03-04T05:06:07Z' },
      { projectId, receivedAt: Date.now() },
    )
    if (!old.ok) throw old.error
    expect((await w.write([old.row]))[0]!.status).toBe('inserted')
    const part = await t.db.query(`SELECT to_regclass('activity_logs_p202503') AS t`)
    expect(part.rows[0]!.t).toBe('activity_logs_p202503')
    await w.close()
  })

  it('isolates a row Postgres rejects and keeps its neighbours', async () => {
    const w = new GroupCommitWriter(t.db)
    const good1 = login('iso1')
    const good2 = login('iso2')
    // Bypasses the validator on purpose: an address inet refuses.
    const bad: EventRow = { ...login('iso3'), ip: 'not-an-ip' }
    const res = await w.write([good1, bad, good2])
    expect(res[0]!.status).toBe('inserted')
    expect(res[2]!.status).toBe('inserted')
    expect(res[1]!.status).toBe('rejected')
    expect(res[1]!.status === 'rejected' && res[1]!.error.code).toBe('STRATA_EVENT_REJECTED_BY_DB')
    const n = await t.db.query(
      `SELECT count(*)::int AS n FROM login_events WHERE message_id LIKE 'iso%'`,
    )
    expect(n.rows[0]!.n).toBe(2)
    await w.close()
  })

  it('loses nothing acknowledged when its connection is killed before COMMIT', async () => {
    let kills = 0
    const admin = new pg.Client({ connectionString: t.tdb.url })
    await admin.connect()
    const w = new GroupCommitWriter(t.db, {
      async beforeCommit(client) {
        if (kills++ === 0) {
          await admin.query('SELECT pg_terminate_backend($1)', [
            (client as unknown as { processID: number }).processID,
          ])
        }
      },
    })
    const res = await w.write([login('kill1'), login('kill2')])
    expect(res.map((r) => r.status)).toEqual(['inserted', 'inserted'])
    expect(kills).toBeGreaterThanOrEqual(2)
    expect(w.stats().retries).toBeGreaterThanOrEqual(1)
    const n = await t.db.query(
      `SELECT count(*)::int AS n FROM login_events WHERE message_id IN ('kill1','kill2')`,
    )
    expect(n.rows[0]!.n).toBe(2)
    // A client retry of the same ids gives no second row.
    const retry = await w.write([login('kill1'), login('kill2')])
    expect(retry.map((r) => r.status)).toEqual(['duplicate', 'duplicate'])
    expect(await countRows(t.db, 'event_dedup', projectId)).toBeGreaterThan(0)
    await admin.end()
    await w.close()
  })

  it('answers 503-class errors when the database stays unreachable, and recovers', async () => {
    const admin = new pg.Client({ connectionString: t.tdb.url })
    await admin.connect()
    let failing = true
    const w = new GroupCommitWriter(t.db, {
      retryWindow: '300ms',
      unavailableCooldown: '200ms',
      async beforeCommit(client) {
        if (failing)
          await admin.query('SELECT pg_terminate_backend($1)', [
            (client as unknown as { processID: number }).processID,
          ])
      },
    })
    await expect(w.write([login('down1')])).rejects.toMatchObject({ code: 'STRATA_DB_UNAVAILABLE' })
    // Refused fast while the cooldown lasts.
    await expect(w.write([login('down2')])).rejects.toMatchObject({ code: 'STRATA_DB_UNAVAILABLE' })
    failing = false
    await new Promise((r) => setTimeout(r, 250))
    const ok = await w.write([login('down1')])
    expect(ok[0]!.status).toBe('inserted')
    const n = await t.db.query(
      `SELECT count(*)::int AS n FROM login_events WHERE message_id = 'down1'`,
    )
    expect(n.rows[0]!.n).toBe(1)
    await admin.end()
    await w.close()
  })

  it('refuses with STRATA_INGEST_OVERLOADED when the queue is full and drains on close', async () => {
    const w = new GroupCommitWriter(t.db, { maxQueueRows: 3, maxConcurrentFlushes: 1 })
    const p1 = w.write([login('q1'), login('q2'), login('q3')])
    await expect(w.write([login('q4')])).rejects.toMatchObject({ code: 'STRATA_INGEST_OVERLOADED' })
    const closing = w.close()
    await expect(w.write([login('q5')])).rejects.toMatchObject({ code: 'STRATA_INGEST_CLOSED' })
    await closing
    expect((await p1).every((r) => r.status === 'inserted')).toBe(true)
  })
})

describe('retention', () => {
  it('drops whole partitions older than the retention window and trims old dedup keys', async () => {
    const w = new GroupCommitWriter(t.db, { retention: '400d' })
    const now = Date.now()
    const old = validator.activity(
      {
        messageId: 'ret-old',
        userId: 'u',
        action: 'view',
        timestamp: new Date(now - 500 * 86_400_000).toISOString(),
      },
      { projectId, receivedAt: now },
    )
    const recent = validator.activity(
      {
        messageId: 'ret-new',
        userId: 'u',
        action: 'view',
        timestamp: new Date(now - 30 * 86_400_000).toISOString(),
      },
      { projectId, receivedAt: now },
    )
    if (!old.ok || !recent.ok) throw new Error('fixture')
    await w.write([old.row, recent.row])
    const { dropped } = (await w.maintain(now))!
    expect(dropped.length).toBeGreaterThanOrEqual(1)
    expect(
      dropped.every(
        (d) =>
          d.startsWith('activity_logs_p') ||
          d.startsWith('login_events_p') ||
          d.startsWith('events_p'),
      ),
    ).toBe(true)
    const left = await t.db.query(
      `SELECT message_id FROM activity_logs WHERE message_id LIKE 'ret-%'`,
    )
    expect(left.rows).toEqual([{ message_id: 'ret-new' }])
    const keys = await t.db.query(
      `SELECT message_id FROM event_dedup WHERE message_id LIKE 'ret-%'`,
    )
    expect(keys.rows).toEqual([{ message_id: 'ret-new' }])
    // The writer forgot the dropped partitions: a new backfill into a kept month still works.
    expect((await w.write([{ ...recent.row, messageId: 'ret-new-2' }]))[0]!.status).toBe('inserted')
    await w.close()
  })
})

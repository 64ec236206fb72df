import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase, type Database } from '@strata/pg'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'

const APP = 'strata_sessions_test'
let tdb: TestDatabase
let db: Database
const opened: pg.Client[] = []

async function rawClient(applicationName: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: tdb.url, application_name: applicationName })
  c.on('error', () => {})
  await c.connect()
  opened.push(c)
  return c
}

async function pidOf(c: pg.ClientBase): Promise<number> {
  return (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
}

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error('condition not met in time')
    await sleep(25)
  }
}

beforeAll(async () => {
  tdb = await createTestDatabase('sess')
  db = await createDatabase({
    url: tdb.url,
    applicationName: APP,
    pool: { max: 4 },
    health: { leakThresholdMs: 50, leakStacks: true, longRunningMs: 100 },
  })
  await db.query('CREATE TABLE acct (id int PRIMARY KEY, balance int)')
  await db.query('INSERT INTO acct VALUES (1, 100), (2, 100)')
})
afterAll(async () => {
  for (const c of opened) await c.end().catch(() => {})
  await db?.close()
  await tdb?.drop()
})

describe('leaks', () => {
  it('reports a client held past the threshold with the stack of the acquiring line in this file', async () => {
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    let gotPid!: (pid: number) => void
    const heldPid = new Promise<number>((r) => (gotPid = r))
    // The leak's stack must point at this call.
    const leaked = db.withClient(
      async (c) => {
        gotPid(await pidOf(c))
        await held
      },
      { label: 'leaky-job' },
    )
    const pid = await heldPid
    // Reported once held past the 50 ms threshold, however long the checkout itself took.
    const leaks = await until(async () => {
      const l = await db.health.leaks()
      return l.length ? l : undefined
    })
    release()
    await leaked
    expect(leaks).toHaveLength(1)
    expect(leaks[0]!.label).toBe('leaky-job')
    expect(leaks[0]!.heldMs).toBeGreaterThanOrEqual(50)
    expect(leaks[0]!.pid).toBe(pid)
    expect(leaks[0]!.stack).toMatch(/sessions\.test\.ts:\d+/)
    expect(await db.health.leaks()).toHaveLength(0)
  })
})

describe('long-running and idle-in-transaction sessions', () => {
  it('finds this app’s sessions, terminates them when enabled, never touches another application', async () => {
    const idle = await rawClient(APP)
    await idle.query('BEGIN')
    await idle.query('SELECT 1')
    const idlePid = await pidOf(idle)
    const sleeper = await rawClient(APP)
    const sleeperPid = await pidOf(sleeper)
    const sleeping = sleeper.query('SELECT pg_sleep(30)').catch((e: Error) => e)
    // The same shapes from another application: must be listed nowhere and never signalled.
    const other = await rawClient('someone_else')
    await other.query('BEGIN')
    await other.query('SELECT 1')
    const otherPid = await pidOf(other)
    const otherSleeper = await rawClient('someone_else')
    const otherSleeperPid = await pidOf(otherSleeper)
    const otherSleeping = otherSleeper.query('SELECT pg_sleep(30)').catch((e: Error) => e)

    const report = await until(async () => {
      const r = await db.health.longRunning()
      return r.active.some((s) => s.pid === sleeperPid) &&
        r.idleInTransaction.some((s) => s.pid === idlePid)
        ? r
        : undefined
    })
    const pids = [...report.active, ...report.idleInTransaction].map((s) => s.pid)
    expect(pids).not.toContain(otherPid)
    expect(report.active.find((s) => s.pid === sleeperPid)!.query).toBe('SELECT pg_sleep($1)')

    // Refuses a pid of another application.
    await expect(db.health.terminate(otherPid)).rejects.toMatchObject({
      code: 'STRATA_DB_NOT_OUR_SESSION',
      status: 403,
    })

    // Automatic policy (enabled): cancel the long query, terminate the idle transaction.
    const enforcing = await createDatabase({
      url: tdb.url,
      applicationName: APP,
      health: {
        autoTerminate: { longRunningMs: 100, idleInTransactionMs: 100, action: 'cancel' },
      },
    })
    try {
      const done = await enforcing.health.enforce()
      expect(done.map((d) => d.pid).sort()).toEqual([idlePid, sleeperPid].sort())
      expect(done.find((d) => d.pid === sleeperPid)!.action).toBe('cancel')
      expect(done.find((d) => d.pid === idlePid)!.action).toBe('terminate')
    } finally {
      await enforcing.close()
    }
    const err = await sleeping
    expect((err as { code?: string }).code).toBe('57014') // canceled
    await until(async () => {
      const { rows } = await db.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [idlePid])
      return rows.length === 0 ? true : undefined
    })
    // The other application's sessions are untouched.
    expect((await other.query('SELECT 1 AS ok')).rows[0].ok).toBe(1)
    const { rows: stillRunning } = await other.query(
      "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
      [otherSleeperPid],
    )
    expect(stillRunning).toHaveLength(1)
    await other.query('ROLLBACK')
    await other.query('SELECT pg_cancel_backend($1)', [otherSleeperPid])
    await otherSleeping
  })
})

describe('locks', () => {
  it('shows a blocked UPDATE as a blocked/blocking pair', async () => {
    const holder = await rawClient(APP)
    await holder.query('BEGIN')
    await holder.query('UPDATE acct SET balance = balance + 1 WHERE id = 1')
    const waiter = await rawClient(APP)
    const waiterPid = await pidOf(waiter)
    const waiting = waiter.query('UPDATE acct SET balance = balance - 1 WHERE id = 1')
    const c = await until(async () => {
      const r = await db.locks.contention()
      return r.pairs.some((p) => p.blocked.pid === waiterPid) ? r : undefined
    })
    const pair = c.pairs.find((p) => p.blocked.pid === waiterPid)!
    expect(pair.blocking.pid).toBe(await pidOf(holder))
    expect(pair.blocked.query).toBe('UPDATE acct SET balance = balance - $1 WHERE id = $2')
    expect(pair.blocked.waitEventType).toBe('Lock')
    expect(c.blockedSessions).toBeGreaterThanOrEqual(1)
    await holder.query('COMMIT')
    await waiting
  })

  it('counts a forced deadlock', async () => {
    const before = await db.locks.deadlocks()
    const a = await rawClient(APP)
    const b = await rawClient(APP)
    await a.query("SET deadlock_timeout = '50ms'")
    await b.query("SET deadlock_timeout = '50ms'")
    await a.query('BEGIN')
    await b.query('BEGIN')
    await a.query('UPDATE acct SET balance = 0 WHERE id = 1')
    await b.query('UPDATE acct SET balance = 0 WHERE id = 2')
    const r1 = a.query('UPDATE acct SET balance = 1 WHERE id = 2').catch((e: Error) => e)
    const r2 = b.query('UPDATE acct SET balance = 1 WHERE id = 1').catch((e: Error) => e)
    const results = await Promise.all([r1, r2])
    expect(results.some((r) => (r as { code?: string }).code === '40P01')).toBe(true)
    await a.query('ROLLBACK')
    await b.query('ROLLBACK')
    // A backend flushes its pending statistics when it exits (otherwise when idle, up to 10 s later).
    await a.end()
    await b.end()
    const after = await until(async () => {
      const d = await db.locks.deadlocks()
      return d.total > before.total ? d : undefined
    }, 10_000)
    expect(after.sinceStart).toBeGreaterThanOrEqual(1)
  })
})

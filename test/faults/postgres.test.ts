// PostgreSQL faults under ingest load, with real processes: a private cluster this file owns
// (killed, restarted, frozen, locked), Strata as a child process, SDK-like clients that resend
// what was not acknowledged. Invariant: every acknowledged event stored exactly once, a 503 +
// Retry-After (never a 500, never a hang) while degraded, recovery without restarting Strata.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkExactlyOnce, eventFor, IngestLoad, postBatch } from '../support/ingest-load.js'
import { startPrivatePg, type PrivatePg } from '../support/private-pg.js'
import {
  createProject,
  startStrata,
  type ProjectKeys,
  type StrataProcess,
} from '../support/strata-process.js'
import { probe, report, sampler, sleep, tally, until, type Probe } from './support/fault-kit.js'

let pgs: PrivatePg
let dbUrl: string
let strata: StrataProcess

beforeAll(async () => {
  pgs = await startPrivatePg()
  dbUrl = await pgs.createDatabase('strata')
  strata = await startStrata({ databaseUrl: dbUrl })
})

afterAll(async () => {
  await strata?.stop()
  await pgs?.stop()
})

/** Strata's own client backends (not ours), optionally only those running a statement. */
const STRATA_BACKENDS = `
  SELECT pid FROM pg_stat_activity
  WHERE datname = 'strata' AND backend_type = 'client backend'
    AND application_name <> 'strata-faults' AND pid <> pg_backend_pid()`

function newLoad(s: StrataProcess, keys: ProjectKeys, clients = 6, batchSize = 12): IngestLoad {
  return new IngestLoad({ target: () => s.url, writeKey: keys.writeKey, clients, batchSize })
}

/** The invariant, asserted; returns the figures for the report. */
async function assertExactlyOnce(keys: ProjectKeys, load: IngestLoad) {
  // A fresh connection: the server may have restarted since the last one.
  const check = await pgs.connect('strata')
  const r = await checkExactlyOnce(check, keys.projectId, load).finally(() => check.end())
  expect(load.batches.filter((b) => b.givenUp)).toEqual([])
  expect(r.missing).toEqual([])
  expect(r.duplicated).toEqual([])
  expect(r.unknown).toEqual([])
  expect(r.stored).toBe(load.sentIds().length)
  return { acked: r.acked, stored: r.stored, duplicated: r.duplicated.length }
}

/** Figures for the report, before any assertion can stop the test. */
async function storedFigures(keys: ProjectKeys, load: IngestLoad) {
  const check = await pgs.connect('strata')
  const r = await checkExactlyOnce(check, keys.projectId, load).finally(() => check.end())
  return {
    acked: r.acked,
    stored: r.stored,
    missing: r.missing.length,
    duplicated: r.duplicated.length,
  }
}

/** Distinct non-2xx answers of probes: status, code and message. */
function failures(probes: Probe[]): string[] {
  const out = new Set<string>()
  for (const p of probes) {
    if (p.status >= 200 && p.status < 300) continue
    const e = (p.body as { error?: { code?: string; message?: string } })?.error
    out.add(`${p.status} ${e?.code ?? p.error ?? ''} ${e?.message ?? ''}`.trim())
  }
  return [...out]
}

/** Degraded answers are 503 with Retry-After; never another 5xx. */
function assertCleanErrors(load: IngestLoad) {
  const bad = load.attempts.filter(
    (a) => (a.status >= 500 && a.status !== 503) || (a.status === 503 && !a.retryAfter),
  )
  expect(bad).toEqual([])
}

async function readyz(s: StrataProcess) {
  return probe(`${s.url}/readyz`, { timeoutMs: 10_000 })
}

let rangeSeq = 0
/** An analytics read over a range not read before (a cache miss: it goes to PostgreSQL). */
function analytics(s: StrataProcess, keys: ProjectKeys, as: 'admin' | 'operator' = 'admin') {
  const to = new Date(Date.now() + 3_600_000 + ++rangeSeq * 1000).toISOString()
  const from = new Date(Date.now() - 86_400_000).toISOString()
  const project = as === 'operator' ? `&project=${keys.projectId}` : ''
  return probe(`${s.url}/v1/analytics/logins?from=${from}&to=${to}${project}`, {
    headers: { authorization: `Bearer ${as === 'operator' ? s.adminToken : keys.adminKey}` },
    timeoutMs: 40_000,
  })
}

describe('PostgreSQL faults under ingest load', () => {
  it('1. backends killed (pg_terminate_backend) mid-flush: acknowledged events stored once', async () => {
    const keys = await createProject(strata, 'pg-terminate')
    // Full batches (100 events): flushes of several hundred rows take the COPY path and last
    // long enough for kills to land inside them.
    const load = newLoad(strata, keys, 8, 100).start()
    await load.waitAcked(20)
    const from = Date.now()
    let kills = 0
    let activeKills = 0
    // Every Strata backend, every 30–130 ms for 5 s: the busy ones are inside flush
    // transactions (COPY, the dedup insert, COMMIT), the idle ones break the next checkout.
    while (Date.now() - from < 5000) {
      const rows = await pgs.query<{ k: boolean; active: boolean }>(
        `SELECT pg_terminate_backend(pid) AS k, state <> 'idle' AS active
         FROM (${STRATA_BACKENDS}) s JOIN pg_stat_activity USING (pid)`,
        [],
        'strata',
      )
      kills += rows.filter((r) => r.k).length
      activeKills += rows.filter((r) => r.k && r.active).length
      await sleep(30 + Math.random() * 100)
    }
    const to = Date.now()
    const recovered = load.firstAckAfter(to)
    await load.waitAcked(20)
    await load.finish()
    const ready = await readyz(strata)
    report('pg-terminate-backend', {
      kills,
      activeKills,
      ...(await storedFigures(keys, load)),
      load: load.summary({ from, to }),
      firstAckAfterMs: (recovered ?? load.firstAckAfter(to))!.end - to,
    })
    expect(ready.status).toBe(200)
    expect(kills).toBeGreaterThan(10)
    expect(activeKills).toBeGreaterThan(0)
    assertCleanErrors(load)
    await assertExactlyOnce(keys, load)
  })

  it('2. PostgreSQL restarted (pg_ctl restart -m fast) under load: no loss, no duplicate, recovery', async () => {
    const keys = await createProject(strata, 'pg-restart')
    const load = newLoad(strata, keys).start()
    await load.waitAcked(20)
    const readiness = sampler(() => readyz(strata), 200)
    const from = Date.now()
    await pgs.restart()
    const restartedAt = Date.now()
    const recoveredMs = await until(
      'an acknowledged batch after the restart',
      () => load.firstAckAfter(restartedAt) !== undefined,
      60_000,
      20,
    )
    await load.waitAcked(20)
    await load.finish()
    const probes = await readiness.stop()
    const ready = await readyz(strata)
    report('pg-restart', {
      restartMs: restartedAt - from,
      recoveredMsAfterRestart: recoveredMs,
      readyz: tally(probes),
      ...(await storedFigures(keys, load)),
      errors: load.errors(),
      load: load.summary({ from, to: restartedAt }),
    })
    expect(ready.status).toBe(200)
    // While the server was down, /readyz said so (in bounded time) instead of hanging.
    for (const p of probes) expect([200, 503]).toContain(p.status)
    assertCleanErrors(load)
    await assertExactlyOnce(keys, load)
  })

  it('2b. PostgreSQL down for 5 s (pg_ctl stop -m fast, then start): 503 + Retry-After, then recovery', async () => {
    const keys = await createProject(strata, 'pg-down')
    const load = newLoad(strata, keys).start()
    await load.waitAcked(20)
    const readiness = sampler(() => readyz(strata), 250)
    const reads = sampler(() => analytics(strata, keys), 500)
    const from = Date.now()
    let to = 0
    try {
      await pgs.stopServer()
      await sleep(5000)
    } finally {
      await pgs.startServer()
      to = Date.now()
    }
    const recoveredMs = await until(
      'an acknowledged batch after the start',
      () => load.firstAckAfter(to) !== undefined,
      60_000,
      20,
    )
    await load.waitAcked(20)
    await load.finish()
    const probes = await readiness.stop()
    const analyticsProbes = await reads.stop()
    const down = (p: { at: number; ms: number }) => p.at >= from + 1000 && p.at + p.ms <= to - 500
    const ready = await readyz(strata)
    report('pg-down', {
      downMs: to - from,
      recoveredMsAfterStart: recoveredMs,
      readyzWhileDown: tally(probes.filter(down)),
      analyticsWhileDown: tally(analyticsProbes.filter(down)),
      analyticsErrors: failures(analyticsProbes),
      ...(await storedFigures(keys, load)),
      load: load.summary({ from, to }),
    })
    expect(ready.status).toBe(200)
    for (const p of probes.filter(down)) {
      expect(p.status).toBe(503)
      expect(p.ms).toBeLessThan(5000)
    }
    // Ingestion refused while down: 503 with Retry-After (asserted below), never a 2xx.
    expect(load.attempts.some((a) => a.status === 503 && down({ at: a.start, ms: 0 }))).toBe(true)
    expect(load.attempts.filter((a) => a.status === 0)).toEqual([])
    for (const p of analyticsProbes) expect(p.status).not.toBe(0) // answered (status: test 2c)
    assertCleanErrors(load)
    await assertExactlyOnce(keys, load)
  })

  // The analytics cache wraps its factory's error; the answer is the database's own 503.
  it('2c. analytics while PostgreSQL is down: 503 + Retry-After, then 200 after the restart', async () => {
    const keys = await createProject(strata, 'pg-down-analytics')
    // The operator token needs no database, and the project is then known for a minute: the
    // read below fails in the analytics query itself, deterministically.
    expect((await analytics(strata, keys, 'operator')).status).toBe(200)
    let down: Probe
    try {
      await pgs.stopServer()
      down = await analytics(strata, keys, 'operator')
    } finally {
      await pgs.startServer()
    }
    const recoveredMs = await until(
      'analytics 200 after the start',
      async () => (await analytics(strata, keys, 'operator')).status === 200,
      30_000,
    )
    report('pg-down-analytics', { whileDown: failures([down]), recoveredMs })
    expect(down.status).toBe(503)
    expect(down.retryAfter).toBeTruthy()
  })

  it('3. PostgreSQL frozen 10 s (SIGSTOP postmaster + backends): bounded answers, then recovery', async () => {
    const keys = await createProject(strata, 'pg-freeze')
    const load = newLoad(strata, keys).start()
    await load.waitAcked(20)
    const readiness = sampler(() => readyz(strata), 250)
    const reads = sampler(() => analytics(strata, keys), 500)
    const frozen = await pgs.freeze()
    const from = Date.now()
    let thawed = 0
    try {
      await sleep(10_000)
    } finally {
      await pgs.thaw()
      thawed = Date.now()
    }
    const recoveredMs = await until(
      'an acknowledged batch after the thaw',
      () => load.firstAckAfter(thawed) !== undefined,
      60_000,
      20,
    )
    await load.waitAcked(20)
    await load.finish()
    const ready = await readiness.stop()
    const analyticsProbes = await reads.stop()
    const duringFreeze = ready.filter((p) => p.at >= from + 500 && p.at + p.ms <= thawed)
    const readyAfter = await readyz(strata)
    report('pg-freeze', {
      frozenProcesses: frozen.length,
      frozenMs: thawed - from,
      recoveredMsAfterThaw: recoveredMs,
      readyzDuringFreeze: tally(duringFreeze),
      readyzMaxMsDuringFreeze: Math.max(0, ...duringFreeze.map((p) => p.ms)),
      analytics: tally(analyticsProbes),
      analyticsErrors: failures(analyticsProbes),
      analyticsMaxMs: Math.max(0, ...analyticsProbes.map((p) => p.ms)),
      ...(await storedFigures(keys, load)),
      load: load.summary({ from, to: thawed }),
    })
    expect(frozen.length).toBeGreaterThan(3)
    expect(readyAfter.status).toBe(200)
    // /readyz answers within its own 2 s check timeout while the database is frozen: 503.
    expect(duringFreeze.length).toBeGreaterThan(0)
    for (const p of duringFreeze) {
      expect(p.status).toBe(503)
      expect(p.ms).toBeLessThan(5000)
    }
    // No request hung: every attempt got an answer (no client-side timeout).
    expect(load.attempts.filter((a) => a.status === 0)).toEqual([])
    assertCleanErrors(load)
    await assertExactlyOnce(keys, load)
    // Analytics reads answered in bounded time (their status while PostgreSQL is unreachable is
    // test 2c's subject).
    for (const p of analyticsProbes) expect(p.status).not.toBe(0)
  })

  it('4. flush tables locked (LOCK TABLE … ACCESS EXCLUSIVE) past the statement timeout, small pool: clear errors, nothing lost, recovery', async () => {
    // Its own instance: a 3 s statement timeout and a pool of 4, so the lock outlasts both.
    const small = await startStrata({
      databaseUrl: dbUrl,
      env: { DATABASE_POOL_MAX: '4', DATABASE_STATEMENT_TIMEOUT: '3s' },
    })
    try {
      const keys = await createProject(small, 'pg-lock')
      const load = newLoad(small, keys, 8).start()
      await load.waitAcked(20)
      const locker = await pgs.connect('strata')
      const reads = sampler(() => analytics(small, keys), 500)
      let from = 0
      let to = 0
      try {
        await locker.query('BEGIN')
        await locker.query('LOCK TABLE event_dedup IN ACCESS EXCLUSIVE MODE')
        from = Date.now()
        await sleep(8000)
      } finally {
        await locker.query('ROLLBACK').catch(() => {})
        to = Date.now()
        await locker.end().catch(() => {})
      }
      const recoveredMs = await until(
        'an acknowledged batch after the unlock',
        () => load.firstAckAfter(to) !== undefined,
        60_000,
        20,
      )
      await load.waitAcked(20)
      await load.finish()
      const analyticsProbes = await reads.stop()
      const ready = await readyz(small)
      report('pg-lock-table', {
        lockedMs: to - from,
        recoveredMsAfterUnlock: recoveredMs,
        analytics: tally(analyticsProbes),
        analyticsErrors: failures(analyticsProbes),
        errors: load.errors(),
        ...(await storedFigures(keys, load)),
        load: load.summary({ from, to }),
      })
      expect(ready.status).toBe(200)
      const stored = await assertExactlyOnce(keys, load)
      expect(stored.acked).toBeGreaterThan(0)
      // Clear errors: every refusal carries a STRATA_* code and a message (no hang: all
      // answered). Whether it is the 503 + Retry-After it should be is test 4b's subject.
      for (const a of load.attempts.filter((x) => x.status !== 202)) {
        expect(a.status).toBeGreaterThanOrEqual(500)
        expect(a.code).toMatch(/^STRATA_/)
        expect(a.message).toBeTruthy()
      }
      for (const p of analyticsProbes) expect([200, 503]).toContain(p.status)
    } finally {
      await small.stop()
    }
  })

  // A flush the database could not finish in time wrote nothing: back-pressure, not bad data.
  it('4b. a flush cancelled by statement_timeout answers 503 + Retry-After', async () => {
    const small = await startStrata({
      databaseUrl: dbUrl,
      env: { DATABASE_STATEMENT_TIMEOUT: '1s' },
    })
    const locker = await pgs.connect('strata')
    try {
      const keys = await createProject(small, 'pg-statement-timeout')
      await locker.query('BEGIN')
      await locker.query('LOCK TABLE event_dedup IN ACCESS EXCLUSIVE MODE')
      const r = await postBatch(small.url, keys.writeKey, [eventFor('st-1', 0)])
      await locker.query('ROLLBACK')
      const retried = await postBatch(small.url, keys.writeKey, [eventFor('st-1', 0)])
      report('pg-statement-timeout', {
        whileLocked: `${r.status} ${r.code ?? ''}`,
        retryAfter: r.retryAfter ?? null,
        ms: r.end - r.start,
        retried: retried.status,
      })
      expect(r.status).toBe(503)
      expect(r.retryAfter).toBeTruthy()
    } finally {
      await locker.query('ROLLBACK').catch(() => {})
      await locker.end().catch(() => {})
      await small.stop()
    }
  })
})

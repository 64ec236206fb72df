import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import pg from 'pg'
import { Registry } from 'prom-client'
import { createDatabase, isTransientDbError, pgErrors } from '@strata/pg'
import type { Database } from '@strata/pg'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'

let tdb: TestDatabase
let db: Database

beforeAll(async () => {
  tdb = await createTestDatabase('pgcore')
  db = await createDatabase({ url: tdb.url, pool: { max: 4, statementTimeoutMs: 500 } })
})
afterAll(async () => {
  await db?.close()
  await tdb?.drop()
})

describe('query', () => {
  it('runs parameterised statements and records the histogram', async () => {
    await db.query('CREATE TABLE items (id int PRIMARY KEY, name text)')
    await db.query('INSERT INTO items (id, name) VALUES ($1, $2)', [1, 'a'], { label: 'seed' })
    const { rows } = await db.query<{ name: string }>('SELECT name FROM items WHERE id = $1', [1], {
      label: 'read',
    })
    expect(rows).toEqual([{ name: 'a' }])
    const text = await db.metrics.metrics()
    expect(text).toMatch(
      /db_client_operation_duration_seconds_count\{db_operation_name="SELECT",db_collection_name="items",label="read",error_type="",pool_name="strata"\} 1/,
    )
    expect(text).toMatch(
      /db_client_operation_duration_seconds_bucket\{le="0.0005",db_operation_name="INSERT"/,
    )
    expect(text).toMatch(/db_client_connection_count\{state="idle",pool_name="strata"\} \d/)
    expect(text).toMatch(/db_client_connection_max\{pool_name="strata"\} 4/)
    expect(text).toMatch(/db_client_connection_pending_requests\{pool_name="strata"\} 0/)
    expect(text).toMatch(/db_client_connection_wait_time_seconds_count\{pool_name="strata"\} \d+/)
  })

  it('wraps constraint violations with the Postgres fields and the caller stack', async () => {
    const err = await db
      .query('INSERT INTO items (id, name) VALUES ($1, $2)', [1, 'dup'], { label: 'dup' })
      .catch((e: unknown) => e)
    expect(pgErrors.is(err, 'STRATA_DB_QUERY_FAILED')).toBe(true)
    const e = err as { details: Record<string, unknown>; cause: unknown; stack: string }
    expect(e.details).toMatchObject({
      code: '23505',
      constraint: 'items_pkey',
      table: 'items',
      operation: 'INSERT',
      collection: 'items',
      label: 'dup',
    })
    expect(e.cause).toBeInstanceOf(pg.DatabaseError)
    expect(isTransientDbError(err)).toBe(false)
    expect(await db.metrics.metrics()).toMatch(/error_type="23505"/)
    // Client survived (a plain statement error does not destroy the connection).
    expect((await db.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 })
  })

  it('fails a statement beyond statement_timeout with STRATA_DB_TIMEOUT within budget', async () => {
    // The server enforces the configured budget (a missing or wrong setting lets pg_sleep(5)
    // finish, or shows here), so no wall-clock bound is needed.
    const { rows } = await db.query<{ v: string }>(
      "SELECT current_setting('statement_timeout') AS v",
    )
    expect(rows[0]!.v).toBe('500ms')
    const err = await db.query('SELECT pg_sleep(5)').catch((e: unknown) => e)
    expect(pgErrors.is(err, 'STRATA_DB_TIMEOUT')).toBe(true)
    expect((err as { details: { kind: string; budgetMs: number } }).details).toMatchObject({
      kind: 'statement',
      budgetMs: 500,
      code: '57014',
    })
    expect(isTransientDbError(err)).toBe(false)
  })

  it('client-side query timeout destroys the connection and reports kind=query', async () => {
    const err = await db
      .query('SELECT pg_sleep(0.4)', [], { timeoutMs: 100 })
      .catch((e: unknown) => e)
    expect(pgErrors.is(err, 'STRATA_DB_TIMEOUT')).toBe(true)
    expect((err as { details: { kind: string } }).details.kind).toBe('query')
    expect((await db.query('SELECT 2 AS two')).rows[0]).toEqual({ two: 2 })
  })
})

describe('observers', () => {
  it('sees every statement with its classification, label, duration and error', async () => {
    const seen: { op: string; table: string; label: string; ms: number; failed: boolean }[] = []
    const off = db.observe({
      onQuery: (o) =>
        seen.push({
          op: o.info.operation,
          table: o.info.collection,
          label: o.label,
          ms: o.durationMs,
          failed: o.error !== undefined,
        }),
    })
    await db.query('SELECT id FROM items', [], { label: 'obs' })
    await db.query('SELECT pg_sleep(0.05)', [], { label: 'nap' })
    await db.query('SELECT nope FROM items', [], { label: 'obs' }).catch(() => {})
    await db.transaction((tx) => tx.query('UPDATE items SET name = name'), { label: 'txobs' })
    off()
    await db.query('SELECT 1')
    expect(seen.map((s) => `${s.op}:${s.table}:${s.label}:${s.failed}`)).toEqual([
      'SELECT:items:obs:false',
      'SELECT::nap:false',
      'SELECT:items:obs:true',
      'BEGIN::txobs:false',
      'UPDATE:items:txobs:false',
      'COMMIT::txobs:false',
    ])
    // Measured in milliseconds around the round trip: the server slept at least 50 ms.
    expect(seen.every((s) => Number.isFinite(s.ms))).toBe(true)
    expect(seen[1]!.ms).toBeGreaterThanOrEqual(45)
  })

  it('rejects (does not crash) on a statement pg refuses synchronously', async () => {
    const err = await db.query(undefined as unknown as string).catch((e: unknown) => e)
    expect(pgErrors.is(err, 'STRATA_DB_QUERY_FAILED')).toBe(true)
    expect(db.pool.stats().active).toBe(0)
  })
})

describe('pool resilience', () => {
  it('survives pg_terminate_backend of idle clients', async () => {
    const local = await createDatabase({ url: tdb.url, pool: { max: 3, min: 3 }, name: 'idlekill' })
    try {
      expect(local.pool.stats().idle).toBe(3)
      const pids = await db.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
         WHERE application_name = 'strata' AND datname = current_database() AND pid <> pg_backend_pid()
           AND backend_type = 'client backend' AND state = 'idle'`,
      )
      expect(pids.rows[0]!.n).toBeGreaterThanOrEqual(3)
      // The 'error' events arrive asynchronously; the process must simply survive them.
      await vi.waitFor(
        () => expect(local.pool.stats().errors.connectionLost).toBeGreaterThanOrEqual(3),
        {
          timeout: 10_000,
        },
      )
      const { rows } = await local.query<{ ok: number }>('SELECT 1 AS ok')
      expect(rows[0]!.ok).toBe(1)
      expect(local.pool.stats().errors.connectionLost).toBe(3)
    } finally {
      await local.close()
    }
    // The main pool's idle clients were terminated too: it recovers.
    expect((await db.query('SELECT 3 AS x')).rows[0]).toEqual({ x: 3 })
  })

  it('survives pg_terminate_backend of a busy client (in a query and checked out between queries)', async () => {
    const local = await createDatabase({
      url: tdb.url,
      applicationName: 'strata_busy',
      pool: { max: 2, statementTimeoutMs: 10_000 },
    })
    try {
      const busy = local.query('SELECT pg_sleep(3)').catch((e: unknown) => e)
      let checkedOut!: () => void
      const isCheckedOut = new Promise<void>((r) => (checkedOut = r))
      let resume!: () => void
      const resumed = new Promise<void>((r) => (resume = r))
      const held = local
        .withClient(async (client) => {
          await client.query('SELECT 1')
          checkedOut()
          await resumed // terminated while checked out and idle between queries
          return client.query('SELECT 1')
        })
        .catch((e: unknown) => e)
      await isCheckedOut
      // Wait until the sleeping query is running on the server.
      await vi.waitFor(
        async () => {
          const { rows } = await db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE application_name = 'strata_busy' AND query = 'SELECT pg_sleep(3)' AND state = 'active'`,
          )
          expect(rows[0]!.n).toBe(1)
        },
        { timeout: 10_000, interval: 20 },
      )
      const killed = await db.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
         WHERE application_name = 'strata_busy'`,
      )
      expect(killed.rows[0]!.n).toBe(2)
      // Both clients saw their connection end before the checked-out one is used again.
      await vi.waitFor(
        () => expect(local.pool.stats().errors.connectionLost).toBeGreaterThanOrEqual(2),
        {
          timeout: 10_000,
        },
      )
      resume()
      const err = await busy
      expect(pgErrors.is(err, 'STRATA_DB_UNAVAILABLE')).toBe(true)
      expect(isTransientDbError(err)).toBe(true)
      expect(pgErrors.is(await held, 'STRATA_DB_UNAVAILABLE')).toBe(true)
      expect((await local.query('SELECT 4 AS x')).rows[0]).toEqual({ x: 4 })
      expect(local.pool.stats().errors).toMatchObject({ connectionLost: 2, discarded: 2 })
      expect(local.pool.stats().total).toBeLessThanOrEqual(2)
    } finally {
      await local.close()
    }
  })

  it('gives STRATA_DB_TIMEOUT kind=acquire when the pool stays saturated', async () => {
    const local = await createDatabase({ url: tdb.url, pool: { max: 1, acquireTimeoutMs: 150 } })
    try {
      // The only client stays checked out until the second caller has given up.
      let release!: () => void
      const released = new Promise<void>((r) => (release = r))
      let checkedOut!: () => void
      const isCheckedOut = new Promise<void>((r) => (checkedOut = r))
      const hold = local.withClient(async (client) => {
        await client.query('SELECT 1')
        checkedOut()
        await released
      })
      await isCheckedOut
      const err = await local.query('SELECT 1').catch((e: unknown) => e)
      expect(pgErrors.is(err, 'STRATA_DB_TIMEOUT')).toBe(true)
      expect((err as { details: { kind: string } }).details.kind).toBe('acquire')
      expect(isTransientDbError(err)).toBe(true)
      expect(local.pool.stats().errors).toEqual({
        acquireFailed: 1,
        connectionLost: 0,
        discarded: 0,
      })
      release()
      await hold
    } finally {
      await local.close()
    }
  })

  it('reports sane pool stats under saturation', async () => {
    const registry = new Registry()
    const local = await createDatabase({
      url: tdb.url,
      name: 'stats',
      pool: { max: 2 },
      metrics: { registry },
    })
    try {
      const waitsBefore = local.pool.stats().acquireWait.count
      // Two callers hold both clients until released; four more queue behind them.
      let release!: () => void
      const released = new Promise<void>((r) => (release = r))
      const holders = Array.from({ length: 2 }, () =>
        local.withClient(async (client) => {
          await client.query('SELECT 1')
          await released
        }),
      )
      const queued = Array.from({ length: 4 }, () => local.query('SELECT 1'))
      const queuedAt = performance.now()
      await vi.waitFor(() => expect(local.pool.stats()).toMatchObject({ active: 2, waiting: 4 }), {
        timeout: 10_000,
      })
      const s = local.pool.stats()
      expect(s.max).toBe(2)
      expect(s.active).toBe(2)
      expect(s.total).toBe(2)
      expect(s.waiting).toBe(4)
      expect(s.utilization).toBe(1)
      expect(await registry.metrics()).toMatch(
        /db_client_connection_pending_requests\{pool_name="stats"\} 4/,
      )
      // The queued callers wait at least this long: a lower bound, which load only raises.
      await new Promise((r) => setTimeout(r, 200))
      const heldFor = performance.now() - queuedAt
      release()
      await Promise.all([...holders, ...queued])
      const after = local.pool.stats()
      expect(after.waiting).toBe(0)
      expect(after.active).toBe(0)
      expect(after.acquireWait.count - waitsBefore).toBe(6)
      expect(after.acquireWait.max).toBeGreaterThanOrEqual(heldFor)
      expect(after.acquireWait.p99).toBeGreaterThanOrEqual(heldFor * 0.9)
      expect(after.acquireWait.p50).toBeLessThanOrEqual(after.acquireWait.p95)
      expect(after.acquireWait.p95).toBeLessThanOrEqual(after.acquireWait.max)
    } finally {
      await local.close()
    }
  })

  it('survives the server ending a session idle in a transaction (idle_in_transaction_session_timeout)', async () => {
    const local = await createDatabase({
      url: tdb.url,
      pool: { max: 1, idleInTransactionTimeoutMs: 150 },
    })
    try {
      const err = await local
        .withClient(async (client) => {
          await client.query('BEGIN')
          // A leaked transaction: the server ends the session after 150 ms idle in it (pg may
          // report that twice: the FATAL message, then the closed socket).
          await vi.waitFor(
            () => expect(local.pool.stats().errors.connectionLost).toBeGreaterThanOrEqual(1),
            {
              timeout: 10_000,
            },
          )
          return client.query('SELECT 1')
        })
        .catch((e: unknown) => e)
      expect(pgErrors.is(err, 'STRATA_DB_UNAVAILABLE')).toBe(true)
      expect((await local.query('SELECT 5 AS x')).rows[0]).toEqual({ x: 5 })
    } finally {
      await local.close()
    }
  })

  it('shares one registry between databases (series per pool_name)', async () => {
    const registry = new Registry()
    const a = await createDatabase({ url: tdb.url, name: 'pool_a', metrics: { registry } })
    const b = await createDatabase({ url: tdb.url, name: 'pool_b', metrics: { registry } })
    try {
      await a.query('SELECT 1')
      await b.query('SELECT 1')
      const text = await registry.metrics()
      for (const name of ['pool_a', 'pool_b']) {
        expect(text).toContain(`db_client_connection_max{pool_name="${name}"} 10`)
        expect(text).toMatch(
          new RegExp(`db_client_operation_duration_seconds_count\\{[^}]*pool_name="${name}"\\} 1`),
        )
      }
    } finally {
      await a.close()
      await b.close()
    }
    // A closed pool leaves the gauges.
    expect(await registry.metrics()).not.toContain('db_client_connection_max{pool_name="pool_a"}')
  })

  it('fails fast with STRATA_DB_UNAVAILABLE when nothing listens', async () => {
    const err = await createDatabase({ url: 'postgres://postgres@127.0.0.1:1/x' }).catch(
      (e: unknown) => e,
    )
    expect(pgErrors.is(err, 'STRATA_DB_UNAVAILABLE')).toBe(true)
  })
})

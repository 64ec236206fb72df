import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase, pgErrors } from '@strata/pg'
import { databaseOptionsFromEnv, resolveOptions, redactUrl } from '../src/options.js'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'

describe('resolveOptions', () => {
  it('uses defaults', () => {
    const o = resolveOptions({ url: 'postgres://u@h/db' })
    expect(o).toMatchObject({
      applicationName: 'strata',
      max: 10,
      min: 0,
      idleTimeoutMs: 30_000,
      acquireTimeoutMs: 5_000,
      statementTimeoutMs: 30_000,
      idleInTransactionTimeoutMs: 60_000,
      queryTimeoutMs: 35_000,
      pgbouncer: false,
    })
  })

  it('precedence: explicit option → URL query → default', () => {
    const fromUrl = resolveOptions({
      url: 'postgres://x@h/db?application_name=from-url&pool_max=3&connect_timeout=2&statement_timeout=2000&pgbouncer=true',
    })
    expect(fromUrl.applicationName).toBe('from-url')
    expect(fromUrl.max).toBe(3)
    expect(fromUrl.acquireTimeoutMs).toBe(2000) // libpq connect_timeout is seconds
    expect(fromUrl.statementTimeoutMs).toBe(2000)
    expect(fromUrl.queryTimeoutMs).toBe(7000) // derived from the statement timeout
    expect(fromUrl.pgbouncer).toBe(true)
    const explicit = resolveOptions({
      url: 'postgres://x@h/db?application_name=from-url&pool_max=3&statement_timeout=2000',
      pool: { statementTimeoutMs: '1s', max: 2 },
      applicationName: 'x',
    })
    expect(explicit).toMatchObject({
      statementTimeoutMs: 1000,
      max: 2,
      applicationName: 'x',
      name: 'x',
    })
  })

  it('never reads the environment itself', () => {
    const saved = { ...process.env }
    Object.assign(process.env, {
      DATABASE_URL: 'not a url',
      DATABASE_POOL_MAX: 'lots',
      SLOW_QUERY_THRESHOLD_MS: '5',
    })
    try {
      const o = resolveOptions({})
      expect(o.url).toBe('postgres://postgres@127.0.0.1:5432/postgres')
      expect(o.max).toBe(10)
      expect(o.observability.monitor.slowQueryMs).toBe(100)
    } finally {
      for (const k of ['DATABASE_URL', 'DATABASE_POOL_MAX', 'SLOW_QUERY_THRESHOLD_MS'])
        if (saved[k] === undefined) delete process.env[k]
        else process.env[k] = saved[k]
    }
  })

  it('databaseOptionsFromEnv turns the variables into explicit options', () => {
    const env = {
      DATABASE_URL: 'postgres://env@h/envdb?statement_timeout=2000',
      DATABASE_POOL_MAX: '7',
      DATABASE_POOL_MIN: '',
      DATABASE_STATEMENT_TIMEOUT: '9s',
      DATABASE_ACQUIRE_TIMEOUT: '250ms',
      PGAPPNAME: 'from-env',
      SLOW_QUERY_THRESHOLD_MS: '250',
      DATABASE_LEAK_THRESHOLD: '1m',
      DATABASE_LEAK_STACKS: 'TRUE',
    }
    const options = databaseOptionsFromEnv(env)
    expect(options).toEqual({
      url: env.DATABASE_URL,
      applicationName: 'from-env',
      pool: { max: 7, statementTimeoutMs: 9000, acquireTimeoutMs: 250 },
      monitor: { slowQueryMs: 250 },
      health: { leakThresholdMs: 60_000, leakStacks: true },
    })
    const o = resolveOptions(options)
    expect(o.statementTimeoutMs).toBe(9000) // an explicit option now: beats the URL's
    expect(o.queryTimeoutMs).toBe(14_000)
    expect(o.min).toBe(0) // empty means unset
    expect(o.observability.health.leakStacks).toBe(true)
    expect(databaseOptionsFromEnv({})).toEqual({ pool: {}, monitor: {}, health: {} })
  })

  it('rejects bad values with STRATA_DB_INVALID_CONFIG naming the source', () => {
    const bad = (fn: () => unknown, name: RegExp) => {
      let err: unknown
      try {
        fn()
      } catch (e) {
        err = e
      }
      expect(pgErrors.is(err, 'STRATA_DB_INVALID_CONFIG')).toBe(true)
      expect((err as Error).message).toMatch(name)
    }
    bad(
      () => databaseOptionsFromEnv({ DATABASE_POOL_MAX: 'lots' }),
      /^DATABASE_POOL_MAX: expected an integer/,
    )
    bad(
      () => databaseOptionsFromEnv({ DATABASE_STATEMENT_TIMEOUT: '5 minutes' }),
      /^DATABASE_STATEMENT_TIMEOUT:/,
    )
    bad(() => databaseOptionsFromEnv({ DATABASE_LEAK_STACKS: 'maybe' }), /^DATABASE_LEAK_STACKS:/)
    bad(() => databaseOptionsFromEnv({ DATABASE_URL: 'not a url' }), /^DATABASE_URL:/)
    bad(() => resolveOptions({ pool: { max: 0 } }), /^options.max/)
    bad(() => resolveOptions({ pool: { max: 2, min: 3 } }), /^pool.min/)
    bad(() => resolveOptions({ url: 'not a url' }), /^url:/)
    bad(() => resolveOptions({ url: 'postgres://h/db?pool_max=lots' }), /^url pool_max:/)
  })

  it('redacts passwords', () => {
    expect(redactUrl('postgres://u:secret@h:5432/db')).toBe('postgres://u:***@h:5432/db')
    expect(redactUrl('postgres://u@h/db')).toBe('postgres://u@h/db')
  })
})

describe('session settings', () => {
  let tdb: TestDatabase
  beforeAll(async () => {
    tdb = await createTestDatabase('pgopt')
  })
  afterAll(async () => {
    await tdb?.drop()
  })

  const settings = `SELECT current_setting('statement_timeout') AS st,
    current_setting('idle_in_transaction_session_timeout') AS iit,
    current_setting('application_name') AS app`

  it('direct mode sends timeouts and application_name as startup parameters', async () => {
    const db = await createDatabase({
      url: tdb.url,
      applicationName: 'strata_opts',
      pool: { statementTimeoutMs: '1500ms', idleInTransactionTimeoutMs: '2s' },
    })
    try {
      expect((await db.query(settings)).rows[0]).toEqual({
        st: '1500ms',
        iit: '2s',
        app: 'strata_opts',
      })
      expect(db.displayUrl).toBe(tdb.url)
    } finally {
      await db.close()
    }
  })

  it('pgbouncer mode sends no session settings and applies SET LOCAL inside transactions', async () => {
    const db = await createDatabase({
      url: `${tdb.url}?pgbouncer=true`,
      pool: { statementTimeoutMs: 1500, idleInTransactionTimeoutMs: 2000 },
    })
    try {
      const outside = (await db.query<{ st: string; iit: string }>(settings)).rows[0]!
      expect(outside.st).not.toBe('1500ms') // server default, nothing leaked into the session
      const inside = await db.transaction(async (tx) => (await tx.query(settings)).rows[0])
      expect(inside).toMatchObject({ st: '1500ms', iit: '2s' })
      // SET LOCAL ended with the transaction.
      expect((await db.query<{ st: string }>(settings)).rows[0]!.st).toBe(outside.st)
    } finally {
      await db.close()
    }
  })

  it('keeps the awaiting caller in the stack trace of a failed query', async () => {
    const db = await createDatabase({ url: tdb.url })
    try {
      // V8's zero-cost async stack traces: frames of async functions that await the call.
      async function loadTheWidgets() {
        const r = await db.query('SELECT * FROM no_such_table')
        return r.rows
      }
      let err: Error | undefined
      try {
        await loadTheWidgets()
      } catch (e) {
        err = e as Error
      }
      expect(pgErrors.is(err, 'STRATA_DB_QUERY_FAILED')).toBe(true)
      expect((err as unknown as { details: { code: string } }).details.code).toBe('42P01')
      expect(err!.stack).toMatch(/loadTheWidgets/)
    } finally {
      await db.close()
    }
  })

  it('rejects queries after close with STRATA_DB_CLOSED; close is idempotent', async () => {
    const db = await createDatabase({ url: tdb.url })
    await db.close()
    await db.close()
    const err = await db.query('SELECT 1').catch((e: unknown) => e)
    expect(pgErrors.is(err, 'STRATA_DB_CLOSED')).toBe(true)
  })
})

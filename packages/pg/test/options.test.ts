import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase, pgErrors } from '@strata/pg'
import { resolveOptions, redactUrl } from '../src/options.js'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'

describe('resolveOptions', () => {
  it('uses defaults', () => {
    const o = resolveOptions({ url: 'postgres://u@h/db', env: {} })
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

  it('precedence: explicit option → URL query → environment → default', () => {
    const env = {
      DATABASE_URL: 'postgres://env@h/envdb?statement_timeout=2000',
      DATABASE_POOL_MAX: '7',
      DATABASE_STATEMENT_TIMEOUT: '9s',
      DATABASE_ACQUIRE_TIMEOUT: '250ms',
      PGAPPNAME: 'from-env',
    }
    const fromEnv = resolveOptions({ env })
    expect(fromEnv.url).toBe(env.DATABASE_URL)
    expect(fromEnv.max).toBe(7) // env
    expect(fromEnv.statementTimeoutMs).toBe(2000) // URL beats env
    expect(fromEnv.queryTimeoutMs).toBe(7000) // derived from the statement timeout
    expect(fromEnv.acquireTimeoutMs).toBe(250)
    expect(fromEnv.applicationName).toBe('from-env')
    const explicit = resolveOptions({
      env,
      url: 'postgres://x@h/db?application_name=from-url&pool_max=3&connect_timeout=2&pgbouncer=true',
      pool: { statementTimeoutMs: '1s' },
    })
    expect(explicit.applicationName).toBe('from-url') // URL beats env
    expect(explicit.max).toBe(3)
    expect(explicit.acquireTimeoutMs).toBe(2000) // libpq connect_timeout is seconds
    expect(explicit.statementTimeoutMs).toBe(1000) // explicit beats env
    expect(explicit.pgbouncer).toBe(true)
    expect(resolveOptions({ env, pool: { max: 2 }, applicationName: 'x' })).toMatchObject({
      max: 2,
      applicationName: 'x',
      name: 'x',
    })
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
      () => resolveOptions({ env: { DATABASE_POOL_MAX: 'lots' } }),
      /^DATABASE_POOL_MAX: expected an integer/,
    )
    bad(
      () => resolveOptions({ env: { DATABASE_STATEMENT_TIMEOUT: '5 minutes' } }),
      /^DATABASE_STATEMENT_TIMEOUT:/,
    )
    bad(() => resolveOptions({ env: {}, pool: { max: 0 } }), /^options.max/)
    bad(() => resolveOptions({ env: {}, pool: { max: 2, min: 3 } }), /^pool.min/)
    bad(() => resolveOptions({ env: { DATABASE_URL: 'not a url' } }), /^DATABASE_URL:/)
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

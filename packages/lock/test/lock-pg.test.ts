import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPgLock, lockErrors } from '@strata/lock'
import type { PgLockPool } from '@strata/lock'
import { createTestDatabase } from '../../../test/support/pg.js'
import type { TestDatabase } from '../../../test/support/pg.js'
import { registerLockSuite } from './support/lock-suite.js'

registerLockSuite('postgres advisory locks', async ({ databaseUrl }) => {
  // Two pools stand in for two processes; each held lock pins one client.
  const poolA = new pg.Pool({ connectionString: databaseUrl, max: 10 })
  const poolB = new pg.Pool({ connectionString: databaseUrl, max: 10 })
  const admin = new pg.Pool({ connectionString: databaseUrl, max: 1 })
  // breakLock and the final DROP DATABASE terminate backends on purpose; a pg Pool re-emits an
  // idle client's error on itself, which without a listener is an uncaught exception.
  for (const p of [poolA, poolB, admin]) p.on('error', () => {})
  const provider = createPgLock({ pool: poolA })
  const other = createPgLock({ pool: poolB })
  return {
    provider,
    other,
    // Ending the holder's session is the only way to take a session advisory lock away.
    breakLock: async (key) => {
      await admin.query(
        `SELECT pg_terminate_backend(l.pid) FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.objid = (hashtextextended($1, 0) & 4294967295)::oid`,
        [`strata:lock:${key}`],
      )
    },
    cleanup: async () => {
      await provider.close()
      await other.close()
      await Promise.all([poolA.end(), poolB.end(), admin.end()])
    },
  }
})

describe('Postgres lock specifics', () => {
  let db: TestDatabase
  let pool: pg.Pool
  beforeAll(async () => {
    db = await createTestDatabase('lockpg')
    pool = new pg.Pool({ connectionString: db.url, max: 6 })
    pool.on('error', () => {}) // backends are terminated on purpose in these tests
  })
  afterAll(async () => {
    await pool?.end()
    await db?.drop()
  })

  it('accepts a pg Pool structurally and creates the fence table once, even concurrently', async () => {
    const structural: PgLockPool = pool
    const providers = Array.from({ length: 3 }, () =>
      createPgLock({ pool: structural, prefix: 'p:' }),
    )
    const held = await Promise.all(providers.map((p, i) => p.acquire(`k${i}`, '5s')))
    expect(held.map((l) => l.fence)).toEqual([1, 1, 1])
    const { rows } = await pool.query('SELECT key, token FROM strata_lock_fences ORDER BY key')
    expect(rows).toEqual([
      { key: 'p:k0', token: '1' },
      { key: 'p:k1', token: '1' },
      { key: 'p:k2', token: '1' },
    ])
    await Promise.all(providers.map((p) => p.close()))
    expect(held.every((l) => !l.held)).toBe(true)
  })

  it('a frozen holder cannot block forever: the server ends its idle session', async () => {
    const locks = createPgLock({ pool, prefix: 's:', sessionTimeoutMargin: 100 })
    const other = createPgLock({ pool, prefix: 's:' })
    const lock = await locks.acquire('frozen', 200)
    // This database's only: other tests on the server hold advisory locks of their own.
    const advisory = () =>
      pool.query(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      )
    expect((await advisory()).rows[0].n).toBe(1)
    // Simulate a frozen process: its local expiry timer never runs.
    ;(lock as unknown as { detach(): void }).detach()
    // idle_session_timeout (200 + 100 ms) ends the session on the server side.
    const next = await other.acquire('frozen', '5s', { wait: '5s', minDelay: 20 })
    expect(next.fence).toBe(lock.fence + 1)
    await next.release()
    expect((await advisory()).rows[0].n).toBe(0)
    // The client went back to the pool with its session timeout reset.
    for (let i = 0; i < 3; i++) {
      const reset = await pool.query("SELECT current_setting('idle_session_timeout') AS v")
      expect(reset.rows[0].v).toBe('0')
    }
    await other.close()
    await locks.close()
  })

  it('rejects a bad fence table name and a missing pool', () => {
    const err = (() => {
      try {
        createPgLock({ pool, fenceTable: 'x; DROP TABLE y' })
      } catch (e) {
        return e
      }
    })()
    expect(lockErrors.is(err, 'STRATA_LOCK_INVALID_OPTIONS')).toBe(true)
    expect(() => createPgLock({} as never)).toThrow(/needs `pool`/)
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase, pgErrors } from '@strata/pg'
import type { Database, Transaction } from '@strata/pg'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'

let tdb: TestDatabase
let db: Database

beforeAll(async () => {
  tdb = await createTestDatabase('pgtx')
  db = await createDatabase({ url: tdb.url, pool: { max: 6 } })
  await db.query('CREATE TABLE acc (id int PRIMARY KEY, n int NOT NULL)')
  await db.query('INSERT INTO acc VALUES (1, 0), (2, 0)')
})
afterAll(async () => {
  await db?.close()
  await tdb?.drop()
})

/** Resolves when `n` parties have arrived: forces two transactions to interleave. */
function barrier(n: number): () => Promise<void> {
  let arrived = 0
  let release!: () => void
  const all = new Promise<void>((r) => (release = r))
  return () => {
    if (++arrived === n) release()
    return all
  }
}

describe('transaction', () => {
  it('commits, and rolls back when the callback throws (rethrowing the callback error as is)', async () => {
    await db.transaction(async (tx) => {
      await tx.query('UPDATE acc SET n = 10 WHERE id = 1')
    })
    const boom = new Error('boom')
    const err = await db
      .transaction(async (tx) => {
        await tx.query('UPDATE acc SET n = 99 WHERE id = 1')
        throw boom
      })
      .catch((e: unknown) => e)
    expect(err).toBe(boom)
    expect((await db.query('SELECT n FROM acc WHERE id = 1')).rows[0]).toEqual({ n: 10 })
    expect(db.pool.stats().active).toBe(0)
  })

  it('applies isolation and read-only options', async () => {
    const level = await db.transaction(
      async (tx) =>
        (await tx.query<{ l: string }>("SELECT current_setting('transaction_isolation') AS l"))
          .rows,
      { isolation: 'repeatable read', readOnly: true },
    )
    expect(level[0]!.l).toBe('repeatable read')
    const err = await db
      .transaction((tx) => tx.query('UPDATE acc SET n = 1'), { readOnly: true })
      .catch((e: unknown) => e)
    expect(pgErrors.is(err, 'STRATA_DB_QUERY_FAILED')).toBe(true)
    expect((err as { details: { code: string } }).details.code).toBe('25006')
  })

  it('retries a forced serialization failure (40001) and succeeds', async () => {
    const both = barrier(2)
    const retries: number[] = []
    const attempts: number[] = []
    // Classic write skew: each reads the sum, then writes a different row.
    const body = (id: number) => async (tx: Transaction) => {
      attempts.push(tx.attempt)
      const { rows } = await tx.query<{ s: number }>('SELECT sum(n)::int AS s FROM acc')
      if (tx.attempt === 0) await both()
      await tx.query('UPDATE acc SET n = n + $1 WHERE id = $2', [rows[0]!.s + 1, id])
      return tx.attempt
    }
    const opts = (id: number) => ({
      isolation: 'serializable' as const,
      onRetry: (_e: unknown, attempt: number) => retries.push(id * 10 + attempt),
    })
    const [a, b] = await Promise.all([
      db.transaction(body(1), opts(1)),
      db.transaction(body(2), opts(2)),
    ])
    expect(retries.length).toBeGreaterThanOrEqual(1)
    expect(Math.max(a, b)).toBeGreaterThanOrEqual(1)
    expect(attempts.filter((x) => x === 0)).toHaveLength(2)
    expect(await db.metrics.metrics()).toMatch(
      /db_client_transaction_retries_total\{reason="40001",pool_name="strata"\} [1-9]/,
    )
  })

  it('retries a deadlock (40P01)', async () => {
    const both = barrier(2)
    let retried = 0
    const body = (first: number, second: number) => async (tx: Transaction) => {
      await tx.query('UPDATE acc SET n = n + 1 WHERE id = $1', [first])
      if (tx.attempt === 0) await both()
      await tx.query('UPDATE acc SET n = n + 1 WHERE id = $1', [second])
    }
    const onRetry = (e: unknown) => {
      expect((e as { details: { code: string } }).details.code).toBe('40P01')
      retried++
    }
    const before = (await db.query<{ s: number }>('SELECT sum(n)::int AS s FROM acc')).rows[0]!.s
    await Promise.all([
      db.transaction(body(1, 2), { onRetry }),
      db.transaction(body(2, 1), { onRetry }),
    ])
    expect(retried).toBe(1)
    const after = (await db.query<{ s: number }>('SELECT sum(n)::int AS s FROM acc')).rows[0]!.s
    expect(after - before).toBe(4)
  })

  it('gives up with STRATA_DB_SERIALIZATION_RETRIES_EXHAUSTED after maxRetries', async () => {
    let runs = 0
    const err = await db
      .transaction(
        async (tx) => {
          runs++
          await tx.query(`DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = '40001'; END $$`)
        },
        { maxRetries: 2 },
      )
      .catch((e: unknown) => e)
    expect(runs).toBe(3)
    expect(pgErrors.is(err, 'STRATA_DB_SERIALIZATION_RETRIES_EXHAUSTED')).toBe(true)
    expect((err as { details: unknown }).details).toMatchObject({ attempts: 3, code: '40001' })
  })

  it('destroys a client whose backend was terminated inside the transaction', async () => {
    const err = await db
      .transaction(async (tx) => {
        await tx.query('SELECT pg_terminate_backend(pg_backend_pid())')
      })
      .catch((e: unknown) => e)
    expect(pgErrors.is(err, 'STRATA_DB_UNAVAILABLE')).toBe(true)
    expect((await db.query('SELECT 1 AS ok')).rows[0]).toEqual({ ok: 1 })
  })
})

describe('withClient', () => {
  it('releases the client and destroys it when fn fails', async () => {
    const pidOf = async (): Promise<number> =>
      db.withClient(
        async (c) => (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p,
      )
    const local = await createDatabase({ url: tdb.url, pool: { max: 1 } })
    try {
      const p1 = await local.withClient(
        async (c) => (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p,
      )
      const p2 = await local.withClient(
        async (c) => (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p,
      )
      expect(p2).toBe(p1) // reused
      const err = await local
        .withClient(async (c) => {
          await c.query('BEGIN')
          throw new Error('mid-transaction')
        })
        .catch((e: unknown) => e)
      expect((err as Error).message).toBe('mid-transaction')
      const p3 = await local.withClient(
        async (c) =>
          (await c.query<{ p: number; t: string }>('SELECT pg_backend_pid() AS p')).rows[0]!.p,
      )
      expect(p3).not.toBe(p1) // the failed client was destroyed, not returned
      expect(local.pool.stats().active).toBe(0)
    } finally {
      await local.close()
    }
    // A successful withClient gives its client back to the pool: the next one gets it again.
    const main = await pidOf()
    expect(await pidOf()).toBe(main)
  })
})

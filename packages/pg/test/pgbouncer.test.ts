// Runs the pool, transactions and migrations through a real PgBouncer in transaction mode
// (test/support/pgbouncer.ts: a spare port, stopped by pid). Needs the `pgbouncer` binary
// (apt-get install pgbouncer) and hypopg; without them the suite fails, naming the package.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase, migrate, pgErrors } from '@strata/pg'
import type { Database, Transaction } from '@strata/pg'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'
import { startPgbouncer, type Pgbouncer } from '../../../test/support/pgbouncer.js'
import { HYPOPG_MISSING } from './support/components.js'

describe('through PgBouncer (transaction mode)', () => {
  let dir: string
  let bouncer: Pgbouncer
  let tdb: TestDatabase
  let url: URL

  beforeAll(async () => {
    bouncer = await startPgbouncer({ defaultPoolSize: 4, maxClientConn: 200 })
    tdb = await createTestDatabase('pgb')
    dir = await mkdtemp(join(tmpdir(), 'strata-pgb-'))
    url = new URL(bouncer.urlFor(tdb.url))
  })
  afterAll(async () => {
    await bouncer?.stop()
    await tdb?.drop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('without the pgbouncer flag fails at start-up with a hint', async () => {
    const err = await createDatabase({ url: url.toString() }).catch((e: unknown) => e)
    expect(pgErrors.is(err, 'STRATA_DB_INVALID_CONFIG')).toBe(true)
    expect((err as Error).message).toMatch(/pgbouncer=true/)
  })

  it('two migrators, statement timeouts in transactions and serialization retries work', async () => {
    const pooled = `${url.toString()}?pgbouncer=true`
    const a = await createDatabase({ url: pooled, name: 'a', pool: { statementTimeoutMs: 300 } })
    const b = await createDatabase({ url: pooled, name: 'b' })
    const migDir = join(dir, 'mig')
    await mkdir(migDir)
    await writeFile(
      join(migDir, '0001_t.sql'),
      'CREATE TABLE pgb_log (v int);\nINSERT INTO pgb_log VALUES (1);\n',
    )
    for (let v = 2; v <= 6; v++)
      await writeFile(
        join(migDir, `000${v}_s.sql`),
        `SELECT pg_sleep(0.02);\nINSERT INTO pgb_log VALUES (${v});\n`,
      )
    try {
      const [ra, rb] = await Promise.all([
        migrate(a, { name: 'pgb', dir: migDir }),
        migrate(b, { name: 'pgb', dir: migDir }),
      ])
      expect([...ra, ...rb].map((m) => m.version).sort()).toEqual([1, 2, 3, 4, 5, 6])
      const { rows } = await a.query<{ v: number[] }>(
        'SELECT array_agg(v ORDER BY v) AS v FROM pgb_log',
      )
      expect(rows[0]!.v).toEqual([1, 2, 3, 4, 5, 6])

      const err = await a
        .transaction((tx) => tx.query('SELECT pg_sleep(2)'))
        .catch((e: unknown) => e)
      expect(pgErrors.is(err, 'STRATA_DB_TIMEOUT')).toBe(true)
      expect((err as { details: { kind: string } }).details.kind).toBe('statement')

      await serializationRetry(a)
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('explain and the hypopg-verified advisor work through transaction pooling', async () => {
    const db = await createDatabase({ url: `${url.toString()}?pgbouncer=true`, name: 'adv' })
    try {
      await db.query('CREATE TABLE pgb_orders (id int PRIMARY KEY, customer int NOT NULL)')
      await db.query('INSERT INTO pgb_orders SELECT g, g % 5000 FROM generate_series(1, 100000) g')
      await db.query('ANALYZE pgb_orders')
      const sql = 'SELECT * FROM pgb_orders WHERE customer = $1'
      expect((await db.explain(sql)).generic).toBe(true)
      expect((await db.explain(sql, [3], { analyze: true })).analyzed).toBe(true)
      // Other traffic on the same PgBouncer pool meanwhile, so server connections change hands.
      const noise = Promise.all(
        Array.from({ length: 20 }, (_, i) => db.query('SELECT pg_sleep(0.005), $1::int', [i])),
      )
      const advice = await db.advisor.indexSuggestions({ statements: [sql] })
      await noise
      // hypopg's hypothetical indexes live in one session: verified means the advisor kept one
      // server connection for the whole analysis, which transaction pooling only gives inside a
      // transaction.
      expect(advice.method, `${HYPOPG_MISSING} (advisor: ${advice.notice})`).toBe('hypopg')
      expect(advice.suggestions.map((x) => [x.columns, x.costAfter! < x.costBefore / 2])).toEqual([
        [['customer'], true],
      ])
    } finally {
      await db.close()
    }
  })
})

async function serializationRetry(db: Database): Promise<void> {
  await db.query('CREATE TABLE acc (id int PRIMARY KEY, n int NOT NULL)')
  await db.query('INSERT INTO acc VALUES (1, 0), (2, 0)')
  let arrived = 0
  let go!: () => void
  const both = new Promise<void>((r) => (go = r))
  let retries = 0
  const body = (id: number) => async (tx: Transaction) => {
    const { rows } = await tx.query<{ s: number }>('SELECT sum(n)::int AS s FROM acc')
    if (tx.attempt === 0) {
      if (++arrived === 2) go()
      await both
    }
    await tx.query('UPDATE acc SET n = n + $1 WHERE id = $2', [rows[0]!.s + 1, id])
  }
  await Promise.all(
    [1, 2].map((id) =>
      db.transaction(body(id), { isolation: 'serializable', onRetry: () => retries++ }),
    ),
  )
  expect(retries).toBeGreaterThanOrEqual(1)
}

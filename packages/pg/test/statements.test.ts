import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createDatabase,
  diffSnapshots,
  migrate,
  pgMigrations,
  type Database,
  type StatementRow,
} from '@strata/pg'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'
import { PG_STAT_STATEMENTS_MISSING } from './support/components.js'

let tdb: TestDatabase
let db: Database
let missing: string | undefined

beforeAll(async () => {
  tdb = await createTestDatabase('stmts')
  db = await createDatabase({ url: tdb.url })
  await migrate(db, [pgMigrations])
  await db.query('CREATE TABLE t (id int PRIMARY KEY, v text)')
  await db.query("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g")
  const why = await db.statements.availability()
  missing = why && `${PG_STAT_STATEMENTS_MISSING} (monitor: ${why.code})`
})
afterAll(async () => {
  await db?.close()
  await tdb?.drop()
})

const row = (id: string, calls: number, totalMs: number): StatementRow => ({
  queryid: id,
  query: `q${id}`,
  calls,
  rows: calls,
  totalMs,
  meanMs: totalMs / calls,
  sharedBlksHit: calls * 10,
  sharedBlksRead: 0,
  cacheHitRatio: 1,
})

describe('pg_stat_statements', () => {
  it('diffs snapshots, treating a counter that went down (reset/eviction) as new', () => {
    const a = {
      takenAt: new Date(0),
      rows: new Map([
        ['1', row('1', 10, 100)],
        ['2', row('2', 50, 50)],
      ]),
    }
    const b = {
      takenAt: new Date(1),
      rows: new Map([
        ['1', row('1', 15, 200)],
        ['2', row('2', 5, 10)],
        ['3', row('3', 1, 1)],
      ]),
    }
    const d = diffSnapshots(b, a)
    expect(d.find((r) => r.queryid === '1')).toMatchObject({ calls: 5, totalMs: 100, meanMs: 20 })
    expect(d.find((r) => r.queryid === '2')).toMatchObject({ calls: 5, totalMs: 10 })
    expect(d.find((r) => r.queryid === '3')).toMatchObject({ calls: 1 })
  })

  it('answers a clear code instead of throwing when the extension is missing', async () => {
    const other = await createTestDatabase('stmtsmiss')
    const bare = await createDatabase({ url: other.url, statements: { createExtension: false } })
    try {
      const r = await bare.statements.top()
      expect(r).toMatchObject({ available: false, code: 'STRATA_DB_EXTENSION_MISSING' })
      expect(r.available === false && r.hint).toMatch(/shared_preload_libraries/)
      expect(await bare.statements.sample()).toBeUndefined()
    } finally {
      await bare.close()
      await other.drop()
    }
  })

  it('top by total and mean since a snapshot, with calls, rows and cache hit ratio', async () => {
    expect(missing, missing).toBeUndefined()
    const s0 = await db.statements.snapshot()
    for (let i = 0; i < 5; i++) await db.query('SELECT v FROM t WHERE id = $1', [i + 1])
    await db.query('SELECT count(*) FROM t a, t b WHERE a.id < b.id')
    const byTotal = await db.statements.top({ orderBy: 'total', since: s0, limit: 50 })
    if (!byTotal.available) throw new Error(`top(): ${byTotal.code}`)
    const point = byTotal.items.find((r) => r.query === 'SELECT v FROM t WHERE id = $1')!
    expect(point.calls).toBe(5)
    expect(point.rows).toBe(5)
    expect(point.cacheHitRatio).toBeGreaterThan(0)
    expect(byTotal.items.find((r) => /count\(\*\) FROM t a, t b/.test(r.query))!.calls).toBe(1)
    const totals = byTotal.items.map((r) => r.totalMs)
    expect(totals).toEqual([...totals].sort((a, b) => b - a))
    const byMean = await db.statements.top({ orderBy: 'mean', since: s0, limit: 50 })
    if (!byMean.available) throw new Error(`top(): ${byMean.code}`)
    const means = byMean.items.map((r) => r.meanMs)
    expect(means).toEqual([...means].sort((a, b) => b - a))
    expect(byMean.since).toBe(s0.takenAt.toISOString())
  })

  it('samples deltas into minute/hour history and flags regressions against the baseline', async () => {
    expect(missing, missing).toBeUndefined()
    expect(await db.statements.sample()).toBe(0) // first sample: baseline snapshot only
    for (let i = 0; i < 3; i++) await db.query('SELECT v FROM t WHERE id = $1', [i + 1])
    expect(await db.statements.sample()).toBeGreaterThan(0)
    const { rows } = await db.query<{ resolution: string; calls: string }>(
      `SELECT resolution, sum(calls)::text AS calls FROM strata_statement_history
        WHERE query = 'SELECT v FROM t WHERE id = $1' GROUP BY resolution ORDER BY resolution`,
    )
    expect(rows).toEqual([
      { resolution: 'hour', calls: '3' },
      { resolution: 'minute', calls: '3' },
    ])
    const h = await db.statements.history({ durationMs: 3_600_000 })
    expect(h.resolution).toBe('minute')
    expect(h.points.reduce((n, p) => n + p.calls, 0)).toBeGreaterThanOrEqual(3)
    expect((await db.statements.history({ durationMs: 3 * 86_400_000 })).resolution).toBe('hour')

    // A statement whose last hour averages 10 ms against a 1 ms baseline of the days before.
    await db.query(
      `INSERT INTO strata_statement_history VALUES
         ('hour', date_trunc('hour', now() - interval '2 days'), 4242, 'SELECT slow', 100, 100, 100, 0, 0),
         ('minute', date_trunc('minute', now() - interval '5 minutes'), 4242, 'SELECT slow', 20, 200, 20, 0, 0),
         ('hour', date_trunc('hour', now() - interval '2 days'), 4343, 'SELECT steady', 100, 100, 100, 0, 0),
         ('minute', date_trunc('minute', now() - interval '5 minutes'), 4343, 'SELECT steady', 20, 22, 20, 0, 0)`,
    )
    const reg = await db.statements.regressions()
    expect(reg).toEqual([
      expect.objectContaining({ queryid: '4242', recentMeanMs: 10, baselineMeanMs: 1, factor: 10 }),
    ])
    // Retention: rows past 24 h (minute) / 14 days (hour) are pruned by the next sample.
    await db.query(
      `INSERT INTO strata_statement_history VALUES
         ('minute', now() - interval '25 hours', 1, 'old', 1, 1, 1, 0, 0),
         ('hour', now() - interval '15 days', 1, 'old', 1, 1, 1, 0, 0)`,
    )
    await db.statements.sample()
    const old = await db.query(`SELECT 1 FROM strata_statement_history WHERE query = 'old'`)
    expect(old.rows).toHaveLength(0)
  })
})

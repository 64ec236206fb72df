import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createDatabase, type Database, type ExplainResult, type IndexAdvice } from '@strata/pg'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'
import { HYPOPG_MISSING } from './support/components.js'

const SQL = 'SELECT * FROM orders WHERE customer_id = $1'
let tdb: TestDatabase
let db: Database
let advice: IndexAdvice

/** Buffers the executed plan touched (hit + read, all nodes): the work done, free of load. */
function pagesTouched(r: ExplainResult): number {
  const plan = (r.raw as [{ Plan: Record<string, number> }])[0].Plan
  return plan['Shared Hit Blocks']! + plan['Shared Read Blocks']!
}

beforeAll(async () => {
  tdb = await createTestDatabase('adv')
  db = await createDatabase({ url: tdb.url, monitor: { slowQueryMs: 1 } })
  // 1 M rows in one INSERT … generate_series (about a second); UNLOGGED skips WAL.
  await db.query(
    `CREATE UNLOGGED TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL, total int NOT NULL)`,
  )
  await db.query(
    `INSERT INTO orders SELECT g, (g::bigint * 7919) % 100000, CASE WHEN g % 10 = 0 THEN 'open' ELSE 'done' END, g % 1000
       FROM generate_series(1, 1000000) g`,
  )
  await db.query('ANALYZE orders')
  // The slow statement the advisor should pick up from the query monitor.
  for (const c of [42, 7, 99]) await db.query(SQL, [c], { label: 'GET /orders' })
  advice = await db.advisor.indexSuggestions()
}, 120_000)
afterAll(async () => {
  await db?.close()
  await tdb?.drop()
})

describe('index advisor', () => {
  it('suggests the index for the seq-scanning statement seen by the monitor', () => {
    const s = advice.suggestions.find((x) => x.table === 'orders')
    expect(s, JSON.stringify(advice)).toBeDefined()
    expect(s!.columns).toEqual(['customer_id'])
    expect(s!.create).toBe(
      'CREATE INDEX CONCURRENTLY orders_customer_id_idx ON public.orders (customer_id)',
    )
    expect(s!.queries).toContain(SQL)
    expect(s!.costBefore).toBeGreaterThan(100)
    // Verified with a hypothetical index, not the pg_stats guess the product falls back to.
    expect(advice.method, `${HYPOPG_MISSING} (advisor: ${advice.notice})`).toBe('hypopg')
    expect(advice.notice).toBeUndefined()
    expect(s!.costAfter! * 2).toBeLessThanOrEqual(s!.costBefore)
  })

  it('falls back to the pg_stats heuristic, and says so', async () => {
    const h = await db.advisor.indexSuggestions({ statements: [SQL], method: 'heuristic' })
    expect(h.method).toBe('heuristic')
    expect(h.notice).toMatch(/not verified/)
    expect(h.suggestions.map((s) => [s.table, s.columns, s.costAfter])).toEqual([
      ['orders', ['customer_id'], null],
    ])
  })

  it('without hypopg installed (and not installable) falls back and names the package to install', async () => {
    const noHypo = await createDatabase({ url: tdb.url, statements: { createExtension: false } })
    try {
      const r = await noHypo.advisor.indexSuggestions({ statements: [SQL] })
      expect(r.method).toBe('heuristic')
      expect(r.notice).toMatch(/hypopg extension is not available.*postgresql-<version>-hypopg/)
      expect(r.suggestions.map((s) => s.columns)).toEqual([['customer_id']])
    } finally {
      await noHypo.close()
    }
  })

  it('ignores cheap statements (cost < 100) and indexes that do not halve the cost', async () => {
    const cheap = await db.advisor.indexSuggestions({
      statements: [
        'SELECT * FROM orders WHERE id = $1',
        "SELECT count(*) FROM orders WHERE status = 'done'",
      ],
    })
    expect(cheap.suggestions).toEqual([])
    expect(cheap.statementsAnalyzed).toBe(2)
  })

  it('with hypopg: the real index costs within ±10 % of the hypothetical one and the query does ≥ 5× less work', async () => {
    expect(advice.method, `${HYPOPG_MISSING} (advisor: ${advice.notice})`).toBe('hypopg')
    const s = advice.suggestions.find((x) => x.table === 'orders')!
    const before = await db.explain(SQL, [42], { analyze: true })
    await db.query(s.create)
    const real = await db.explain(SQL)
    expect(Math.abs(real.totalCost - s.costAfter!) / s.costAfter!).toBeLessThanOrEqual(0.1)
    // Planner cost and pages touched, not wall time: both are the same on a loaded machine.
    // (Wall-time speed-ups belong to `npm run bench`.)
    expect(s.costBefore / real.totalCost).toBeGreaterThanOrEqual(5)
    const after = await db.explain(SQL, [42], { analyze: true })
    expect(JSON.stringify(after.raw)).toContain('"Index Name":"orders_customer_id_idx"')
    expect(after.plan.actualRows).toBe(before.plan.actualRows)
    expect(pagesTouched(before) / pagesTouched(after)).toBeGreaterThanOrEqual(5)
    // Now covered by an existing index: no longer suggested.
    const again = await db.advisor.indexSuggestions({ statements: [SQL] })
    expect(again.suggestions).toEqual([])
    await db.query('DROP INDEX orders_customer_id_idx')
  }, 60_000)

  it('reports duplicate and unused indexes and tables mostly read by sequential scans', async () => {
    await db.query('CREATE INDEX orders_status_idx ON orders (status)')
    await db.query('CREATE INDEX orders_status_total_idx ON orders (status, total)')
    const r = await db.advisor.indexSuggestions({ statements: [] })
    expect(r.duplicateIndexes).toEqual([
      expect.objectContaining({
        table: 'orders',
        index: 'orders_status_idx',
        coveredBy: 'orders_status_total_idx',
        drop: 'DROP INDEX CONCURRENTLY public.orders_status_idx',
      }),
    ])
    expect(r.unusedIndexes.map((u) => u.index).sort()).toEqual([
      'orders_status_idx',
      'orders_status_total_idx',
    ])
    // Table statistics reach pg_stat_user_tables when the scanning backends flush them.
    const orders = await vi.waitFor(
      async () => {
        const low = (await db.advisor.indexSuggestions({ statements: [] })).lowIndexUsageTables
        const t = low.find((x) => x.table === 'orders')
        if (!t) throw new Error(`orders not among ${JSON.stringify(low)}`)
        return t
      },
      { timeout: 20_000, interval: 200 },
    )
    expect(orders.seqScans).toBeGreaterThan(0)
    expect(orders.indexUsage).toBeLessThan(0.95)
  }, 40_000)
})

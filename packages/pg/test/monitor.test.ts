import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Logger } from '@strata/core'
import {
  createDatabase,
  normalizeSql,
  planFindings,
  type Database,
  type PlanNode,
} from '@strata/pg'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'

describe('normalizeSql', () => {
  it('replaces literals with $n after the statement’s own placeholders', () => {
    expect(normalizeSql("SELECT * FROM t WHERE a = 'it''s' AND c = $1 LIMIT 10").text).toBe(
      'SELECT * FROM t WHERE a = $2 AND c = $1 LIMIT $3',
    )
    expect(normalizeSql("SELECT E'a\\'b', $tag$x;y$tag$, 1.5e3, -- c\n x1 FROM t2").text).toBe(
      'SELECT $1, $2, $3, x1 FROM t2',
    )
  })

  it('folds IN lists and multi-row VALUES so cardinality stays bounded', () => {
    const a = normalizeSql('SELECT * FROM t WHERE id IN (1, 2, 3) AND x = 4').text
    const b = normalizeSql('SELECT * FROM t WHERE id IN (7, 8) AND x = 9').text
    expect(a).toBe(b)
    expect(normalizeSql("INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b'), (3, 'c')").text).toBe(
      normalizeSql("INSERT INTO t (a, b) VALUES (5, 'q')").text.replace(/\)$/, '), ...'),
    )
  })

  it('detects a second statement, not a trailing semicolon or one inside a literal', () => {
    expect(normalizeSql('SELECT 1;').multiStatement).toBe(false)
    expect(normalizeSql("SELECT ';drop table x'").multiStatement).toBe(false)
    expect(normalizeSql('SELECT 1; DROP TABLE x').multiStatement).toBe(true)
    expect(normalizeSql('SELECT 1; -- trailing comment').multiStatement).toBe(false)
  })
})

describe('query monitor', () => {
  let tdb: TestDatabase
  let db: Database
  const warnings: { obj: unknown; msg: string }[] = []
  const logger = {
    warn: (obj: unknown, msg: string) => warnings.push({ obj, msg }),
    info: () => {},
    debug: () => {},
    error: () => {},
    trace: () => {},
    fatal: () => {},
    child: () => logger,
  } as unknown as Logger

  beforeAll(async () => {
    tdb = await createTestDatabase('mon')
    db = await createDatabase({ url: tdb.url, monitor: { slowQueryMs: 150 }, logger })
    await db.query('CREATE TABLE items (id int PRIMARY KEY, name text)')
    await db.query('INSERT INTO items SELECT g, $1 || g FROM generate_series(1, 100) g', ['item'])
  })
  afterAll(async () => {
    await db?.close()
    await tdb?.drop()
  })

  it('groups by normalized statement, table, type and label; logs slow queries without values', async () => {
    db.monitor.reset()
    for (let i = 0; i < 30; i++)
      await db.query(`SELECT name FROM items WHERE id = ${i + 1}`, [], { label: 'GET /items/:id' })
    await db.query("SELECT pg_sleep(0.2), 'secret-value' AS s", [], { label: 'slow-route' })
    await db.query('UPDATE items SET name = $1 WHERE id = $2', ['x', 1], { label: 'PUT /items' })
    await db.query('SELECT * FROM nope').catch(() => {})

    const s = db.monitor.stats()
    expect(s.count).toBe(33)
    expect(s.slowCount).toBe(1)
    expect(s.slowShare).toBeCloseTo(1 / 33, 3)
    expect(s.errors).toBe(1)
    expect(s.byTable.items!.count).toBe(31)
    expect(s.byType.SELECT!.count).toBe(32)
    expect(s.byType.UPDATE!.count).toBe(1)
    expect(s.byLabel['GET /items/:id']!.count).toBe(30)
    // 30 texts with different literals are one statement.
    const top = db.monitor.statements({ orderBy: 'count', limit: 1 })[0]!
    expect(top.sql).toBe('SELECT name FROM items WHERE id = $1')
    expect(top.count).toBe(30)
    expect(top.p50).toBeGreaterThan(0)
    expect(top.p50).toBeLessThanOrEqual(top.p95)
    expect(top.labels).toEqual(['GET /items/:id'])

    expect(s.topSlow).toHaveLength(1)
    expect(s.topSlow[0]!.sql).toBe('SELECT pg_sleep($1), $2 AS s')
    const slowLog = db.monitor.slowQueries()
    expect(slowLog[0]!.label).toBe('slow-route')
    expect(slowLog[0]!.durationMs).toBeGreaterThanOrEqual(150)
    const warning = warnings.find((w) => w.msg === 'slow query')!
    expect(JSON.stringify(warning.obj)).not.toContain('secret-value')
    expect(JSON.stringify(slowLog)).not.toContain('secret-value')

    const recent = db.monitor.recent(2)
    expect(recent[0]!.error).toBe('42P01')
    expect(recent[1]!.operation).toBe('UPDATE')
    expect(db.monitor.window().count).toBe(33)
  })

  it('reports p50/p95/p99 within one histogram bucket of the exact percentile', async () => {
    db.monitor.reset()
    // Feed known durations straight into the monitor (no timing dependence).
    const info = { operation: 'SELECT', collection: 't' }
    const values = Array.from({ length: 1000 }, (_, i) => (i + 1) * 0.5) // 0.5 … 500 ms
    for (const v of values)
      db.monitor.onQuery({ sql: 'SELECT 1', info, label: '', durationMs: v, rowCount: 1 })
    const s = db.monitor.stats()
    for (const [q, p] of [
      [0.5, s.p50],
      [0.95, s.p95],
      [0.99, s.p99],
    ] as const) {
      const exact = values[Math.ceil(q * values.length) - 1]!
      expect(Math.abs(p - exact) / exact).toBeLessThanOrEqual(0.045)
    }
  })

  it('ignores its own strata:* queries, bounds statements and resets', async () => {
    db.monitor.reset()
    await db.health.longRunning()
    expect(db.monitor.stats().count).toBe(0)
    const small = await createDatabase({ url: tdb.url, monitor: { maxStatements: 2 } })
    try {
      await small.query('SELECT 1 AS a')
      await small.query('SELECT 1 AS b')
      await small.query('SELECT 1 AS c')
      await small.query('SELECT 1 AS d')
      const sqls = small.monitor.statements({ limit: 10 }).map((s) => s.sql)
      expect(sqls).toHaveLength(3)
      expect(sqls).toContain('(other)')
    } finally {
      await small.close()
    }
    const off = await createDatabase({ url: tdb.url, monitor: false })
    try {
      await off.query('SELECT 1')
      expect(off.monitor.stats().count).toBe(0)
    } finally {
      await off.close()
    }
  })
})

describe('explain', () => {
  let tdb: TestDatabase
  let db: Database

  beforeAll(async () => {
    tdb = await createTestDatabase('expl')
    db = await createDatabase({ url: tdb.url })
    await db.query('CREATE TABLE big (id int PRIMARY KEY, grp int, pad text)')
    await db.query(
      "INSERT INTO big SELECT g, g % 50, repeat('x', 20) FROM generate_series(1, 60000) g",
    )
    await db.query('CREATE TABLE small (id int PRIMARY KEY, grp int)')
    await db.query('INSERT INTO small SELECT g, g FROM generate_series(1, 2000) g')
    await db.query('ANALYZE big; ANALYZE small')
  })
  afterAll(async () => {
    await db?.close()
    await tdb?.drop()
  })

  it('gives the plan tree and a seq-scan finding; analyze runs and reports timings', async () => {
    const r = await db.explain('SELECT * FROM big WHERE pad = $1', ['nothing'], { analyze: true })
    expect(r.analyzed).toBe(true)
    expect(r.executionMs).toBeGreaterThan(0)
    const kinds = r.findings.map((f) => f.kind)
    expect(kinds).toContain('seq_scan_large_table')
    expect(kinds).toContain('filter_removes_most_rows')
    expect(r.sql).toBe('SELECT * FROM big WHERE pad = $1')
  })

  it('generic plan for $n without params', async () => {
    const g = await db.explain('SELECT * FROM big WHERE grp = $1')
    expect(g.generic).toBe(true)
    expect(g.analyzed).toBe(false)
    expect(g.plan.totalCost).toBeGreaterThan(0)
    await expect(
      db.explain('SELECT * FROM big WHERE grp = $1', [], { analyze: true }),
    ).rejects.toMatchObject({
      code: 'STRATA_DB_EXPLAIN_REJECTED',
    })
  })

  it('finds misestimates, nested loops over many rows and sorts spilling to disk', () => {
    const node = (n: Partial<PlanNode>): PlanNode => ({
      nodeType: 'Result',
      startupCost: 0,
      totalCost: 1,
      planRows: 1,
      planWidth: 4,
      children: [],
      ...n,
    })
    const plan = node({
      nodeType: 'Sort',
      sortSpaceType: 'Disk',
      sortSpaceUsedKb: 9000,
      actualRows: 50_000,
      actualLoops: 1,
      planRows: 50_000,
      children: [
        node({
          nodeType: 'Nested Loop',
          actualRows: 50_000,
          actualLoops: 1,
          planRows: 40_000,
          children: [
            node({
              nodeType: 'Seq Scan',
              relation: 'a',
              planRows: 100,
              actualRows: 5000,
              actualLoops: 1,
            }),
            node({
              nodeType: 'Index Scan',
              relation: 'b',
              actualRows: 10,
              actualLoops: 5000,
              planRows: 10,
            }),
          ],
        }),
      ],
    })
    const kinds = planFindings(plan, new Map([['a', 5000]])).map((f) => f.kind)
    expect(kinds).toEqual(['sort_spill_to_disk', 'nested_loop_many_rows', 'row_misestimate'])
  })

  it('rejects multi-statement and (read-only mode) non-SELECT; ANALYZE of DML is rolled back', async () => {
    await expect(db.explain('SELECT 1; DELETE FROM big')).rejects.toMatchObject({
      code: 'STRATA_DB_EXPLAIN_REJECTED',
      status: 400,
    })
    await expect(
      db.explain('DELETE FROM big WHERE id = 1', [], { readOnly: true }),
    ).rejects.toMatchObject({ code: 'STRATA_DB_EXPLAIN_REJECTED' })
    await expect(
      db.explain('WITH d AS (DELETE FROM big RETURNING *) SELECT * FROM d', [], { readOnly: true }),
    ).rejects.toMatchObject({ code: 'STRATA_DB_EXPLAIN_REJECTED' })
    const r = await db.explain('DELETE FROM big WHERE id <= 10', [], { analyze: true })
    expect(r.plan.nodeType).toBe('ModifyTable')
    expect(r.plan.actualRows).toBe(0)
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM big')
    expect(rows[0]!.n).toBe(60000)
  })
})

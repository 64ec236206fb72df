import type { Logger } from '@strata/core'
import type { PoolClient } from 'pg'
import { planCost, serverVersion, walkPlan, type PlanNode } from '../explain/explain.js'
import { normalizeSql } from '../monitor/normalize-sql.js'

export interface AdvisorOptions {
  /** Ignore statements whose plan costs less than this (Dexter's rule). @defaultValue 100 */
  minCost?: number
  /** Keep an index only if it cuts the statement's cost by at least this factor. @defaultValue 2 */
  minImprovement?: number
  /** Tables with fewer rows are not worth an index for the heuristic and the usage report. @defaultValue 10000 */
  minTableRows?: number
  /** Tables where indexes serve less than this share of scans are reported. @defaultValue 0.95 */
  indexUsageTarget?: number
  /** Statements taken from pg_stat_statements / the monitor. @defaultValue 20 */
  maxStatements?: number
}

export interface IndexSuggestion {
  schema: string
  table: string
  columns: string[]
  /** Ready to run (outside a transaction). */
  create: string
  /** Planner cost of the helped statements without / with the index (summed). */
  costBefore: number
  /** null for heuristic suggestions (not verified). */
  costAfter: number | null
  /** costBefore / costAfter; null for heuristic suggestions. */
  improvement: number | null
  /** Normalized statements this index helps. */
  queries: string[]
  method: 'hypopg' | 'heuristic'
  reason: string
}

export interface UnusedIndex {
  schema: string
  table: string
  index: string
  bytes: number
  drop: string
}

export interface DuplicateIndex {
  schema: string
  table: string
  index: string
  /** An index whose leading columns already contain this one's. */
  coveredBy: string
  definition: string
  drop: string
}

export interface LowIndexUsageTable {
  schema: string
  table: string
  rows: number
  seqScans: number
  indexScans: number
  /** idx_scan / (seq_scan + idx_scan), 0–1. */
  indexUsage: number
}

export interface IndexAdvice {
  method: 'hypopg' | 'heuristic'
  /** Present when the suggestions were not verified with hypothetical indexes, and why. */
  notice?: string
  suggestions: IndexSuggestion[]
  unusedIndexes: UnusedIndex[]
  duplicateIndexes: DuplicateIndex[]
  lowIndexUsageTables: LowIndexUsageTable[]
  statementsAnalyzed: number
  skipped: { sql: string; reason: string }[]
}

export interface CandidateSource {
  /** Normalized statements worth looking at (slow / expensive), most expensive first. */
  candidates(limit: number): Promise<string[]>
}

const IDENT = /"((?:[^"]|"")+)"|\b([a-z_][a-z0-9_$]*)\b/gi

export function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`
}

interface ScanTarget {
  schema: string
  table: string
  /** Columns in the filter / join condition, equality columns first. */
  columns: string[]
}

interface TableMeta {
  schema: string
  table: string
  rows: number
  columns: Set<string>
  /** Existing btree indexes' key columns (non-partial, no expressions). */
  indexes: string[][]
}

/** Columns of `meta` named in a plan condition, equality comparisons first. */
export function conditionColumns(cond: string, columns: Set<string>): string[] {
  const eq: string[] = []
  const other: string[] = []
  for (const m of cond.matchAll(IDENT)) {
    const name = m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]!
    if (!columns.has(name) || eq.includes(name) || other.includes(name)) continue
    const after = cond.slice((m.index ?? 0) + m[0].length).trimStart()
    const before = cond.slice(0, m.index ?? 0).trimEnd()
    if (/^(\)|::[\w ]+\))*\s*=(?!>)/.test(after) || /=\s*\(*$/.test(before)) eq.push(name)
    else other.push(name)
  }
  return [...eq, ...other]
}

function covered(candidate: string[], existing: string[][]): boolean {
  return existing.some(
    (idx) => idx.length >= candidate.length && candidate.every((c, i) => idx[i] === c),
  )
}

function indexName(table: string, columns: string[]): string {
  return `${table}_${columns.join('_')}_idx`.slice(0, 63)
}

function createSql(t: { schema: string; table: string }, columns: string[]): string {
  const rel = `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`
  return `CREATE INDEX CONCURRENTLY ${quoteIdent(indexName(t.table, columns))} ON ${rel} (${columns.map(quoteIdent).join(', ')})`
}

/**
 * `db.advisor`: index suggestions for the slow and expensive statements, verified with
 * hypothetical indexes (hypopg) when the extension is available — the cost of each statement
 * with and without each single- and two-column candidate, keeping a candidate only when the
 * statement costs ≥ minCost and the index at least halves it (Dexter's rule) — otherwise a
 * pg_stats heuristic, said so in `notice`. Also unused and duplicate indexes and tables mostly
 * read by sequential scans.
 */
export class IndexAdvisor {
  readonly #withClient: <T>(fn: (c: PoolClient) => Promise<T>) => Promise<T>
  readonly #source: CandidateSource
  readonly #options: Required<AdvisorOptions>
  readonly #createExtension: boolean
  readonly #logger: Logger

  constructor(
    withClient: <T>(fn: (c: PoolClient) => Promise<T>) => Promise<T>,
    source: CandidateSource,
    options: Required<AdvisorOptions>,
    createExtension: boolean,
    logger: Logger,
  ) {
    this.#withClient = withClient
    this.#source = source
    this.#options = options
    this.#createExtension = createExtension
    this.#logger = logger
  }

  /**
   * Suggestions for `statements` (normalized SQL, `$n` placeholders allowed), or by default for
   * the most expensive statements from pg_stat_statements and the query monitor.
   * `method: 'heuristic'` forces the pg_stats fallback even when hypopg is there.
   */
  async indexSuggestions(
    options: { statements?: string[]; method?: 'auto' | 'heuristic' } = {},
  ): Promise<IndexAdvice> {
    const statements = (
      options.statements ?? (await this.#source.candidates(this.#options.maxStatements))
    )
      .map((s) => s.trim())
      .filter((s) => /^\(*\s*(select|with|update|delete)\b/i.test(s))
    return this.#withClient(async (client) => {
      // One transaction for the whole analysis: hypopg's hypothetical indexes live in the
      // backend, and through PgBouncer (transaction mode) only a transaction pins one backend.
      await client.query('BEGIN')
      try {
        return await this.#analyze(client, statements, options)
      } finally {
        await client.query('ROLLBACK')
      }
    })
  }

  async #analyze(
    client: PoolClient,
    statements: string[],
    options: { method?: 'auto' | 'heuristic' },
  ): Promise<IndexAdvice> {
    {
      const version = await serverVersion(client)
      const hypopg = options.method === 'heuristic' ? false : await this.#hypopg(client)
      const skipped: { sql: string; reason: string }[] = []
      const bySuggestion = new Map<string, IndexSuggestion>()
      const metaCache = new Map<string, TableMeta | undefined>()
      let analyzed = 0
      for (const sql of new Set(statements)) {
        let before: { cost: number; plan: PlanNode }
        try {
          before = await planCost(client, version, sql)
        } catch (err) {
          skipped.push({
            sql: normalizeSql(sql).text,
            reason: `cannot plan: ${(err as Error).message}`,
          })
          continue
        }
        analyzed++
        if (before.cost < this.#options.minCost) continue
        const targets = await this.#targets(client, before.plan, metaCache)
        for (const target of targets) {
          const meta = metaCache.get(`${target.schema}.${target.table}`)!
          const candidates = this.#candidates(target.columns).filter(
            (c) => !covered(c, meta.indexes),
          )
          if (candidates.length === 0) continue
          const best = hypopg
            ? await this.#bestHypothetical(client, version, sql, target, candidates, before.cost)
            : this.#bestHeuristic(meta, target, candidates, await this.#stats(client, target))
          if (!best) continue
          const key = `${target.schema}.${target.table}(${best.columns.join(',')})`
          const prev = bySuggestion.get(key)
          const q = normalizeSql(sql).text
          if (prev) {
            prev.costBefore += before.cost
            if (prev.costAfter !== null && best.costAfter !== null) prev.costAfter += best.costAfter
            prev.improvement =
              prev.costAfter !== null
                ? round(prev.costBefore / Math.max(prev.costAfter, 1e-9))
                : null
            prev.queries.push(q)
          } else
            bySuggestion.set(key, {
              schema: target.schema,
              table: target.table,
              columns: best.columns,
              create: createSql(target, best.columns),
              costBefore: round(before.cost),
              costAfter: best.costAfter === null ? null : round(best.costAfter),
              improvement:
                best.costAfter === null
                  ? null
                  : round(before.cost / Math.max(best.costAfter, 1e-9)),
              queries: [q],
              method: hypopg ? 'hypopg' : 'heuristic',
              reason: best.reason,
            })
        }
      }
      // One client: one query at a time.
      const unusedIndexes = await this.#unused(client)
      const duplicateIndexes = await this.#duplicates(client)
      const lowIndexUsageTables = await this.#lowUsage(client)
      return {
        method: hypopg ? 'hypopg' : 'heuristic',
        ...(hypopg
          ? {}
          : {
              notice:
                options.method === 'heuristic'
                  ? 'Heuristic mode requested: suggestions come from pg_stats selectivity estimates and were not verified with hypothetical indexes'
                  : 'The hypopg extension is not available (Debian/Ubuntu: apt-get install postgresql-<version>-hypopg, then CREATE EXTENSION hypopg): suggestions come from pg_stats selectivity estimates and were not verified with hypothetical indexes',
            }),
        suggestions: [...bySuggestion.values()].sort(
          (a, b) => b.costBefore - (b.costAfter ?? 0) - (a.costBefore - (a.costAfter ?? 0)),
        ),
        unusedIndexes,
        duplicateIndexes,
        lowIndexUsageTables,
        statementsAnalyzed: analyzed,
        skipped,
      }
    }
  }

  async #hypopg(client: PoolClient): Promise<boolean> {
    const has = async (): Promise<boolean> =>
      (await client.query(`SELECT 1 FROM pg_extension WHERE extname = 'hypopg'`)).rows.length > 0
    if (await has()) return true
    if (!this.#createExtension) return false
    // Inside the analysis transaction: a failed CREATE EXTENSION must not abort it.
    await client.query('SAVEPOINT strata_hypopg')
    try {
      await client.query('CREATE EXTENSION IF NOT EXISTS hypopg')
      await client.query('RELEASE SAVEPOINT strata_hypopg')
    } catch (err) {
      await client.query('ROLLBACK TO SAVEPOINT strata_hypopg')
      this.#logger.debug({ err }, 'hypopg unavailable')
      return false
    }
    return has()
  }

  /** Seq-scanned relations and the columns their filters / join conditions use. */
  async #targets(
    client: PoolClient,
    plan: PlanNode,
    cache: Map<string, TableMeta | undefined>,
  ): Promise<ScanTarget[]> {
    const scans: { node: PlanNode; conds: string[] }[] = []
    walkPlan(plan, (node) => {
      if (node.nodeType === 'Seq Scan' && node.relation) scans.push({ node, conds: [] })
    })
    // Join conditions mentioning a scanned relation's alias count too (hash/merge joins).
    const joinConds: string[] = []
    walkPlan(plan, (node) => {
      for (const c of [node.hashCond, node.mergeCond, node.joinFilter]) if (c) joinConds.push(c)
    })
    const out: ScanTarget[] = []
    for (const { node } of scans) {
      const schema = node.schema ?? 'public'
      const key = `${schema}.${node.relation!}`
      if (!cache.has(key)) cache.set(key, await this.#meta(client, schema, node.relation!))
      const meta = cache.get(key)
      if (!meta) continue
      const conds = [node.filter ?? '', ...joinConds].join(' AND ')
      const columns = conditionColumns(conds, meta.columns)
      if (columns.length) out.push({ schema, table: node.relation!, columns })
    }
    return out
  }

  async #meta(client: PoolClient, schema: string, table: string): Promise<TableMeta | undefined> {
    const { rows } = await client.query<{
      rows: number
      columns: string[]
      indexes: string[] | null
    }>(
      `SELECT greatest(c.reltuples, 0)::float8 AS rows,
              (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
              (SELECT array_agg((SELECT string_agg(a.attname, ',' ORDER BY k.ord)
                                   FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                                   JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum))
                 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
                WHERE i.indrelid = c.oid AND i.indpred IS NULL AND i.indexprs IS NULL
                  AND am.amname = 'btree' AND i.indisvalid) AS indexes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'm')`,
      [schema, table],
    )
    const r = rows[0]
    if (!r) return undefined
    return {
      schema,
      table,
      rows: r.rows,
      columns: new Set(r.columns),
      indexes: (r.indexes ?? []).filter((s) => s).map((s) => s.split(',')),
    }
  }

  /** Single columns, then ordered pairs (equality columns lead), from the first four columns. */
  #candidates(columns: string[]): string[][] {
    const cols = columns.slice(0, 4)
    const out: string[][] = cols.map((c) => [c])
    for (const a of cols) for (const b of cols) if (a !== b) out.push([a, b])
    return out
  }

  async #bestHypothetical(
    client: PoolClient,
    version: number,
    sql: string,
    target: ScanTarget,
    candidates: string[][],
    costBefore: number,
  ): Promise<{ columns: string[]; costAfter: number; reason: string } | undefined> {
    let best: { columns: string[]; costAfter: number } | undefined
    const rel = `${quoteIdent(target.schema)}.${quoteIdent(target.table)}`
    for (const cols of candidates) {
      const { rows } = await client.query<{ indexrelid: number; indexname: string }>(
        `SELECT indexrelid, indexname FROM hypopg_create_index($1)`,
        [`CREATE INDEX ON ${rel} (${cols.map(quoteIdent).join(', ')})`],
      )
      const hypo = rows[0]!
      try {
        // planCost re-prepares every time: a cached generic plan would not see the new index.
        const after = await planCost(client, version, sql)
        let used = false
        walkPlan(after.plan, (n) => {
          if (n.index === hypo.indexname) used = true
        })
        // A wider index must beat the narrower one clearly to be worth its size.
        if (
          used &&
          (!best || after.cost < best.costAfter * (cols.length > best.columns.length ? 0.9 : 1))
        )
          best = { columns: cols, costAfter: after.cost }
      } finally {
        await client.query('SELECT hypopg_drop_index($1)', [hypo.indexrelid])
      }
    }
    if (!best || best.costAfter * this.#options.minImprovement > costBefore) return undefined
    return {
      ...best,
      reason: `A hypothetical index on (${best.columns.join(', ')}) cuts the planner cost from ${round(costBefore)} to ${round(best.costAfter)} (${round(costBefore / Math.max(best.costAfter, 1e-9))}×)`,
    }
  }

  async #stats(
    client: PoolClient,
    target: ScanTarget,
  ): Promise<Map<string, { nDistinct: number; nullFrac: number }>> {
    const { rows } = await client.query<{ attname: string; n_distinct: number; null_frac: number }>(
      `SELECT attname, n_distinct::float8 AS n_distinct, null_frac::float8 AS null_frac
         FROM pg_stats WHERE schemaname = $1 AND tablename = $2 AND attname = ANY($3)`,
      [target.schema, target.table, target.columns],
    )
    return new Map(rows.map((r) => [r.attname, { nDistinct: r.n_distinct, nullFrac: r.null_frac }]))
  }

  /**
   * Without hypopg: the most selective equality column (estimated rows per value from
   * pg_stats.n_distinct ≤ 5 % of the table), plus a second filter column when there is one.
   */
  #bestHeuristic(
    meta: TableMeta,
    target: ScanTarget,
    candidates: string[][],
    stats: Map<string, { nDistinct: number; nullFrac: number }>,
  ): { columns: string[]; costAfter: null; reason: string } | undefined {
    if (meta.rows < this.#options.minTableRows) return undefined
    const selectivity = (col: string): number => {
      const s = stats.get(col)
      if (!s) return 1
      const distinct = s.nDistinct < 0 ? -s.nDistinct * meta.rows : s.nDistinct
      return distinct > 0 ? 1 / distinct : 1
    }
    const ranked = target.columns
      .map((c) => ({ c, sel: selectivity(c) }))
      .sort((a, b) => a.sel - b.sel)
    const first = ranked[0]
    if (!first || first.sel > 0.05) return undefined
    const second = ranked[1]
    const columns =
      second && second.sel < 1 && candidates.some((c) => c[0] === first.c && c[1] === second.c)
        ? [first.c, second.c]
        : [first.c]
    if (covered(columns, meta.indexes)) return undefined
    return {
      columns,
      costAfter: null,
      reason: `Sequential scan on ${meta.table} (~${Math.round(meta.rows)} rows) filtering on ${first.c}, which matches ~${(first.sel * 100).toPrecision(2)} % of rows per value (pg_stats); not verified`,
    }
  }

  async #unused(client: PoolClient): Promise<UnusedIndex[]> {
    const { rows } = await client.query<{
      schema: string
      table: string
      index: string
      bytes: string
    }>(
      `SELECT s.schemaname AS schema, s.relname AS table, s.indexrelname AS index,
              pg_relation_size(s.indexrelid)::text AS bytes
         FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
        WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)
          AND s.relname NOT LIKE 'strata\\_%'
        ORDER BY pg_relation_size(s.indexrelid) DESC LIMIT 50`,
    )
    return rows.map((r) => ({
      ...r,
      bytes: Number(r.bytes),
      drop: `DROP INDEX CONCURRENTLY ${quoteIdent(r.schema)}.${quoteIdent(r.index)}`,
    }))
  }

  async #duplicates(client: PoolClient): Promise<DuplicateIndex[]> {
    const { rows } = await client.query<{
      schema: string
      table: string
      index: string
      covered_by: string
      definition: string
    }>(
      `SELECT n.nspname AS schema, t.relname AS table, ia.relname AS index, ib.relname AS covered_by,
              pg_get_indexdef(a.indexrelid) AS definition
         FROM pg_index a
         JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
         JOIN pg_class ia ON ia.oid = a.indexrelid
         JOIN pg_class ib ON ib.oid = b.indexrelid
         JOIN pg_class t ON t.oid = a.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
          AND ia.relam = ib.relam
          AND NOT a.indisunique AND a.indpred IS NULL AND b.indpred IS NULL
          AND a.indexprs IS NULL AND b.indexprs IS NULL
          AND (b.indkey::text LIKE a.indkey::text || ' %'
               OR (b.indkey::text = a.indkey::text AND (b.indisunique OR a.indexrelid > b.indexrelid)))
        ORDER BY 1, 2, 3`,
    )
    return rows.map((r) => ({
      schema: r.schema,
      table: r.table,
      index: r.index,
      coveredBy: r.covered_by,
      definition: r.definition,
      drop: `DROP INDEX CONCURRENTLY ${quoteIdent(r.schema)}.${quoteIdent(r.index)}`,
    }))
  }

  async #lowUsage(client: PoolClient): Promise<LowIndexUsageTable[]> {
    const { rows } = await client.query<{
      schema: string
      table: string
      rows: number
      seq: string
      idx: string
    }>(
      `SELECT schemaname AS schema, relname AS table, n_live_tup::float8 AS rows,
              seq_scan::text AS seq, coalesce(idx_scan, 0)::text AS idx
         FROM pg_stat_user_tables
        WHERE n_live_tup >= $1 AND seq_scan + coalesce(idx_scan, 0) > 0
          AND coalesce(idx_scan, 0)::float8 / (seq_scan + coalesce(idx_scan, 0)) < $2
        ORDER BY seq_scan DESC LIMIT 50`,
      [this.#options.minTableRows, this.#options.indexUsageTarget],
    )
    return rows.map((r) => {
      const seq = Number(r.seq)
      const idx = Number(r.idx)
      return {
        schema: r.schema,
        table: r.table,
        rows: r.rows,
        seqScans: seq,
        indexScans: idx,
        indexUsage: round(idx / (seq + idx), 4),
      }
    })
  }
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

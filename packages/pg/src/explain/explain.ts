import type { PoolClient } from 'pg'
import { pgErrors } from '../errors.js'
import { sqlState } from '../sql-state.js'
import { normalizeSql } from '../monitor/normalize-sql.js'
import { inspectSql, type SqlInspection } from '../sql-guard/inspect-sql.js'
import {
  assertReadOnlyShape,
  beginReadOnly,
  checkReadOnlySql,
  extendedQuery,
} from '../sql-guard/read-only-runner.js'

export interface ExplainOptions {
  /**
   * Run the statement (EXPLAIN ANALYZE, BUFFERS). A SELECT runs in a READ ONLY transaction, any
   * other statement in a transaction that is always rolled back.
   * @defaultValue false
   */
  analyze?: boolean
  /**
   * Caller SQL (the HTTP route sets this): the SQL guard must accept it (one plain SELECT, no
   * volatile or denied functions), and it runs as `runReadOnly` runs it. @defaultValue false
   */
  readOnly?: boolean
  /** statement_timeout for the EXPLAIN (ms). @defaultValue 30000 */
  timeoutMs?: number
  /** Thresholds for findings. */
  thresholds?: Partial<FindingThresholds>
}

export interface FindingThresholds {
  /** A sequential scan on a table with more rows than this is reported. @defaultValue 10000 */
  seqScanRows: number
  /** Estimated vs actual rows off by this factor or more. @defaultValue 10 */
  misestimateFactor: number
  /** A nested loop whose inner side runs this many times or more. @defaultValue 1000 */
  nestedLoopRows: number
  /** A filter removing at least this share of the rows it read (and ≥ 1000 rows). @defaultValue 0.9 */
  filterRemovedShare: number
}

export const FINDING_DEFAULTS: FindingThresholds = Object.freeze({
  seqScanRows: 10_000,
  misestimateFactor: 10,
  nestedLoopRows: 1_000,
  filterRemovedShare: 0.9,
})

export interface PlanNode {
  nodeType: string
  relation?: string
  schema?: string
  alias?: string
  index?: string
  startupCost: number
  totalCost: number
  planRows: number
  planWidth: number
  filter?: string
  indexCond?: string
  joinType?: string
  hashCond?: string
  mergeCond?: string
  joinFilter?: string
  sortKey?: string[]
  /** With analyze: */
  actualRows?: number
  actualLoops?: number
  actualTotalMs?: number
  rowsRemovedByFilter?: number
  sortSpaceType?: string
  sortSpaceUsedKb?: number
  children: PlanNode[]
}

export type FindingKind =
  | 'seq_scan_large_table'
  | 'row_misestimate'
  | 'nested_loop_many_rows'
  | 'sort_spill_to_disk'
  | 'filter_removes_most_rows'

export interface PlanFinding {
  kind: FindingKind
  severity: 'info' | 'warning' | 'critical'
  /** Node path from the root, e.g. "Nested Loop > Seq Scan". */
  node: string
  relation?: string
  message: string
  recommendation: string
}

export interface ExplainResult {
  /** Normalized statement (literals → $n). */
  sql: string
  analyzed: boolean
  /** Generic plan (placeholders without values). */
  generic: boolean
  totalCost: number
  planningMs?: number
  executionMs?: number
  plan: PlanNode
  findings: PlanFinding[]
  /** EXPLAIN's JSON, unmodified. */
  raw: unknown
}

interface RawNode {
  'Node Type': string
  'Relation Name'?: string
  Schema?: string
  Alias?: string
  'Index Name'?: string
  'Startup Cost': number
  'Total Cost': number
  'Plan Rows': number
  'Plan Width': number
  Filter?: string
  'Index Cond'?: string
  'Join Type'?: string
  'Hash Cond'?: string
  'Merge Cond'?: string
  'Join Filter'?: string
  'Sort Key'?: string[]
  'Actual Rows'?: number
  'Actual Loops'?: number
  'Actual Total Time'?: number
  'Rows Removed by Filter'?: number
  'Sort Space Type'?: string
  'Sort Space Used'?: number
  Plans?: RawNode[]
}

interface RawExplain {
  Plan: RawNode
  'Planning Time'?: number
  'Execution Time'?: number
}

/** The SQL guard's refusal as this module's code (the query-plan route answers with it). */
function rejected(err: unknown): unknown {
  if (!pgErrors.is(err, 'STRATA_DB_SQL_NOT_READ_ONLY')) return err
  return pgErrors.create('STRATA_DB_EXPLAIN_REJECTED', {
    message: err.message,
    details: err.details,
    cause: err,
  })
}

async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw rejected(err)
  }
}

/**
 * PostgreSQL refusing the caller's own statement while planning it (an unknown table or column,
 * a bad cast, a type mismatch, no privilege, too complex): the caller's mistake, a 400 that
 * says what PostgreSQL said. No cause is attached: the text is about the caller's SQL only.
 */
function statementError(err: unknown): unknown {
  const state = sqlState(err)
  if (!state || !/^(42|22|0A|54|2F|3F)/.test(state)) return err
  return pgErrors.create('STRATA_DB_EXPLAIN_REJECTED', {
    message: `PostgreSQL refused the statement: ${(err as Error).message}`,
    details: { reason: 'statement', sqlState: state },
  })
}

/**
 * Checks a statement before EXPLAIN with PostgreSQL's parser: exactly one statement, not itself
 * an EXPLAIN; with `readOnly`, the parse-tree half of the SQL guard (one plain SELECT: no
 * data-modifying CTE, SELECT INTO, row locks or denied function). The functions' catalog check
 * follows inside the read-only transaction (explainOn).
 */
export async function checkExplainable(
  sql: string,
  readOnly: boolean,
): Promise<{ normalized: string; inspection: SqlInspection }> {
  const inspection = await guarded(() => inspectSql(sql))
  if (inspection.statement === 'ExplainStmt')
    throw pgErrors.create('STRATA_DB_EXPLAIN_REJECTED', {
      message: 'Pass the statement itself, without EXPLAIN',
      details: { reason: 'explain' },
    })
  if (readOnly) await guarded(async () => assertReadOnlyShape(inspection))
  return { normalized: normalizeSql(sql).text, inspection }
}

function toNode(r: RawNode): PlanNode {
  const n: PlanNode = {
    nodeType: r['Node Type'],
    startupCost: r['Startup Cost'],
    totalCost: r['Total Cost'],
    planRows: r['Plan Rows'],
    planWidth: r['Plan Width'],
    children: (r.Plans ?? []).map(toNode),
  }
  if (r['Relation Name'] !== undefined) n.relation = r['Relation Name']
  if (r.Schema !== undefined) n.schema = r.Schema
  if (r.Alias !== undefined) n.alias = r.Alias
  if (r['Index Name'] !== undefined) n.index = r['Index Name']
  if (r.Filter !== undefined) n.filter = r.Filter
  if (r['Index Cond'] !== undefined) n.indexCond = r['Index Cond']
  if (r['Join Type'] !== undefined) n.joinType = r['Join Type']
  if (r['Hash Cond'] !== undefined) n.hashCond = r['Hash Cond']
  if (r['Merge Cond'] !== undefined) n.mergeCond = r['Merge Cond']
  if (r['Join Filter'] !== undefined) n.joinFilter = r['Join Filter']
  if (r['Sort Key'] !== undefined) n.sortKey = r['Sort Key']
  if (r['Actual Rows'] !== undefined) n.actualRows = r['Actual Rows']
  if (r['Actual Loops'] !== undefined) n.actualLoops = r['Actual Loops']
  if (r['Actual Total Time'] !== undefined) n.actualTotalMs = r['Actual Total Time']
  if (r['Rows Removed by Filter'] !== undefined) n.rowsRemovedByFilter = r['Rows Removed by Filter']
  if (r['Sort Space Type'] !== undefined) n.sortSpaceType = r['Sort Space Type']
  if (r['Sort Space Used'] !== undefined) n.sortSpaceUsedKb = r['Sort Space Used']
  return n
}

/** Walks a plan depth-first with the node path. */
export function walkPlan(
  plan: PlanNode,
  fn: (node: PlanNode, path: string) => void,
  path = '',
): void {
  const here = path ? `${path} > ${plan.nodeType}` : plan.nodeType
  fn(plan, here)
  for (const c of plan.children) walkPlan(c, fn, here)
}

/** Findings from a plan; `tableRows` gives pg_class.reltuples per relation name. */
export function findings(
  plan: PlanNode,
  tableRows: ReadonlyMap<string, number>,
  thresholds: FindingThresholds = FINDING_DEFAULTS,
): PlanFinding[] {
  const out: PlanFinding[] = []
  walkPlan(plan, (node, path) => {
    const rel = node.relation
    if (node.nodeType === 'Seq Scan' && rel !== undefined) {
      const rows = tableRows.get(rel) ?? 0
      if (rows > thresholds.seqScanRows)
        out.push({
          kind: 'seq_scan_large_table',
          severity: rows > 100 * thresholds.seqScanRows ? 'critical' : 'warning',
          node: path,
          relation: rel,
          message: `Sequential scan on ${rel} (~${Math.round(rows).toLocaleString('en-US')} rows)${node.filter ? ` filtering ${node.filter}` : ''}`,
          recommendation: node.filter
            ? `Consider an index on the columns of ${node.filter} (see the index advisor)`
            : `Reading all of ${rel}: add a WHERE clause or LIMIT, or accept it for reporting queries`,
        })
    }
    if (node.actualRows !== undefined && node.actualLoops !== undefined) {
      const actual = node.actualRows
      const est = node.planRows
      const ratio = Math.max(actual, 1) / Math.max(est, 1)
      if (
        (ratio >= thresholds.misestimateFactor || ratio <= 1 / thresholds.misestimateFactor) &&
        Math.max(actual, est) >= 100
      )
        out.push({
          kind: 'row_misestimate',
          severity: 'warning',
          node: path,
          ...(rel ? { relation: rel } : {}),
          message: `Estimated ${est} rows, got ${actual} per loop (${ratio >= 1 ? `${Math.round(ratio)}× more` : `${Math.round(1 / ratio)}× fewer`})`,
          recommendation: rel
            ? `Run ANALYZE ${rel}; for correlated columns consider CREATE STATISTICS`
            : 'Run ANALYZE on the tables involved; consider extended statistics for correlated columns',
        })
    }
    if (node.nodeType === 'Nested Loop' && node.children.length === 2) {
      const [outer, inner] = node.children as [PlanNode, PlanNode]
      const loops =
        inner.actualLoops ?? (outer.actualRows ?? outer.planRows) * (outer.actualLoops ?? 1)
      if (loops >= thresholds.nestedLoopRows)
        out.push({
          kind: 'nested_loop_many_rows',
          severity: loops >= 100 * thresholds.nestedLoopRows ? 'critical' : 'warning',
          node: path,
          message: `Nested loop runs its inner side ${Math.round(loops).toLocaleString('en-US')} times${inner.relation ? ` (on ${inner.relation})` : ''}`,
          recommendation:
            'Index the inner join column, or check the outer row estimate (a hash join usually wins with many rows)',
        })
    }
    if (node.sortSpaceType === 'Disk')
      out.push({
        kind: 'sort_spill_to_disk',
        severity: 'warning',
        node: path,
        message: `Sort spilled to disk (${node.sortSpaceUsedKb ?? '?'} kB)`,
        recommendation:
          'Raise work_mem for this query (SET LOCAL work_mem), sort fewer rows, or serve the order from an index',
      })
    const removed = node.rowsRemovedByFilter
    if (removed !== undefined && node.actualRows !== undefined) {
      const kept = node.actualRows * (node.actualLoops ?? 1)
      const perLoopRemoved = removed * (node.actualLoops ?? 1)
      const share = perLoopRemoved / Math.max(1, perLoopRemoved + kept)
      if (perLoopRemoved >= 1000 && share >= thresholds.filterRemovedShare)
        out.push({
          kind: 'filter_removes_most_rows',
          severity: 'warning',
          node: path,
          ...(rel ? { relation: rel } : {}),
          message: `Filter ${node.filter ?? ''} removed ${Math.round(share * 100)} % of the rows read (${perLoopRemoved.toLocaleString('en-US')})`,
          recommendation: `An index matching the filter${rel ? ` on ${rel}` : ''} would read only the rows kept`,
        })
    }
  })
  return out
}

/** Server version number (e.g. 150020), cached per client process by the caller. */
export async function serverVersion(client: PoolClient): Promise<number> {
  const { rows } = await client.query<{ v: string }>(
    `SELECT current_setting('server_version_num') AS v`,
  )
  return Number(rows[0]!.v)
}

let prepareSeq = 0

/**
 * EXPLAIN (FORMAT JSON) on one client inside a transaction that is always rolled back, every
 * statement over the extended protocol (the server refuses a second statement there).
 * Placeholders without values get a generic plan: PREPARE + plan_cache_mode =
 * force_generic_plan + EXPLAIN EXECUTE with NULLs, re-prepared on every call (a cached plan would
 * ignore hypothetical indexes created since). EXPLAIN (GENERIC_PLAN) of PG ≥ 16 is not used: over
 * the extended protocol the server wants values for its placeholders. With `readOnly` the
 * transaction is the SQL guard's (READ ONLY, restricted role) and the called functions are
 * checked in the catalog before anything runs.
 */
export async function explainOn(
  client: PoolClient,
  _version: number,
  sql: string,
  params: readonly unknown[] | undefined,
  options: {
    analyze: boolean
    readOnly: boolean
    timeoutMs: number
    /** The caller holds a transaction open: use a savepoint instead of BEGIN/ROLLBACK. */
    nested?: boolean
    /** The statement's inspection when the caller already parsed it. */
    inspection?: SqlInspection
  },
): Promise<{ raw: RawExplain[]; generic: boolean }> {
  if (options.readOnly && options.nested)
    throw new Error('a read-only explain runs in its own transaction, not nested')
  const inspection = options.inspection ?? (await guarded(() => inspectSql(sql)))
  const paramCount = params?.length ?? 0
  const generic = inspection.maxParam > 0 && paramCount === 0
  if (generic && options.analyze)
    throw pgErrors.create('STRATA_DB_EXPLAIN_REJECTED', {
      message:
        'ANALYZE needs values for the $n placeholders (pass params), or explain without analyze for a generic plan',
      details: { reason: 'analyze_needs_params' },
    })
  if (options.readOnly) await beginReadOnly(client, { timeoutMs: options.timeoutMs })
  else
    // A SELECT without writes in it still gets a READ ONLY transaction (ANALYZE runs it).
    await client.query(
      options.nested
        ? 'SAVEPOINT strata_explain'
        : inspection.notReadOnly
          ? 'BEGIN'
          : 'BEGIN READ ONLY',
    )
  try {
    if (options.readOnly) await guarded(() => checkReadOnlySql(client, inspection))
    else
      await client.query(
        `SET LOCAL statement_timeout = ${Math.max(1, Math.floor(options.timeoutMs))}`,
      )
    let res
    if (!generic) {
      const opts = options.analyze ? 'ANALYZE, BUFFERS, FORMAT JSON' : 'FORMAT JSON'
      res = await extendedQuery<{ 'QUERY PLAN': RawExplain[] }>(
        client,
        `EXPLAIN (${opts}) ${sql}`,
        params ?? [],
      )
    } else {
      const name = `strata_explain_${process.pid}_${++prepareSeq}`
      const n = inspection.maxParam
      await client.query(`SET LOCAL plan_cache_mode = force_generic_plan`)
      await extendedQuery(client, `PREPARE ${name} AS ${sql}`)
      res = await extendedQuery<{ 'QUERY PLAN': RawExplain[] }>(
        client,
        `EXPLAIN (FORMAT JSON) EXECUTE ${name}(${Array.from({ length: n }, () => 'NULL').join(', ')})`,
      )
      await client.query(`DEALLOCATE ${name}`)
    }
    return { raw: res.rows[0]!['QUERY PLAN'], generic }
  } catch (err) {
    throw statementError(err)
  } finally {
    await client.query(options.nested ? 'ROLLBACK TO SAVEPOINT strata_explain' : 'ROLLBACK')
  }
}

/** Reltuples per relation named in the plan. */
async function tableSizes(client: PoolClient, plan: PlanNode): Promise<Map<string, number>> {
  const names = new Set<string>()
  walkPlan(plan, (n) => {
    if (n.relation) names.add(n.relation)
  })
  if (names.size === 0) return new Map()
  const { rows } = await client.query<{ relname: string; n: number }>(
    `SELECT c.relname, greatest(c.reltuples, 0)::float8 AS n
       FROM pg_class c WHERE c.relname = ANY($1) AND c.relkind IN ('r', 'p', 'm')`,
    [[...names]],
  )
  const out = new Map<string, number>()
  for (const r of rows) out.set(r.relname, Math.max(out.get(r.relname) ?? 0, r.n))
  return out
}

/** The full `db.explain`: checks, EXPLAIN, plan tree, findings. */
export async function explainStatement(
  client: PoolClient,
  version: number,
  sql: string,
  params: readonly unknown[] | undefined,
  options: ExplainOptions = {},
): Promise<ExplainResult> {
  const { normalized, inspection } = await checkExplainable(sql, options.readOnly ?? false)
  const analyze = options.analyze ?? false
  const { raw, generic } = await explainOn(client, version, sql, params, {
    analyze,
    readOnly: options.readOnly ?? false,
    timeoutMs: options.timeoutMs ?? 30_000,
    inspection,
  })
  const top = raw[0]!
  const plan = toNode(top.Plan)
  const sizes = await tableSizes(client, plan)
  return {
    sql: normalized,
    analyzed: analyze,
    generic,
    totalCost: plan.totalCost,
    ...(top['Planning Time'] !== undefined ? { planningMs: top['Planning Time'] } : {}),
    ...(top['Execution Time'] !== undefined ? { executionMs: top['Execution Time'] } : {}),
    plan,
    findings: findings(plan, sizes, { ...FINDING_DEFAULTS, ...options.thresholds }),
    raw,
  }
}

/** Just the plan's total cost (the advisor's inner loop). */
/**
 * Just the plan's total cost (the advisor's inner loop). Runs inside the caller's transaction
 * (a savepoint per call), so hypothetical indexes and the plans that use them stay on one server
 * connection even through PgBouncer in transaction mode.
 */
export async function planCost(
  client: PoolClient,
  version: number,
  sql: string,
): Promise<{ cost: number; plan: PlanNode }> {
  const { raw } = await explainOn(client, version, sql, undefined, {
    analyze: false,
    readOnly: false,
    timeoutMs: 30_000,
    nested: true,
  })
  const plan = toNode(raw[0]!.Plan)
  return { cost: plan.totalCost, plan }
}

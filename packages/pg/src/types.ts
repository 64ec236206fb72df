import type { PoolClient, QueryResult, QueryResultRow } from 'pg'
import type { Registry } from 'prom-client'
import type { IndexAdvisor } from './advisor/index-advisor.js'
import type { ExplainOptions, ExplainResult } from './explain/explain.js'
import type { SessionHealth } from './health/session-health.js'
import type { QueryObserver } from './instrument/query-instrument.js'
import type { LockMonitor } from './locks/lock-monitor.js'
import type { QueryMonitor } from './monitor/query-monitor.js'
import type { StatementStats } from './statements/statement-stats.js'

/** Per-call options of `db.query`. */
export interface QueryOptions {
  /** Route or caller name; becomes the `label` dimension of the query histograms. */
  label?: string
  /** Client-side timeout for this call (ms); defaults to the pool's `queryTimeoutMs`. */
  timeoutMs?: number
}

/** Anything that runs a parameterised statement: the database itself or a transaction. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<QueryResult<R>>
}

/** A transaction handle: queries run on the transaction's client. */
export interface Transaction extends Queryable {
  /** The underlying client, for COPY streams or cursors inside the transaction. */
  readonly client: PoolClient
  /** 0 on the first run of the callback, n on its n-th retry. */
  readonly attempt: number
}

export interface TransactionOptions {
  isolation?: 'read committed' | 'repeatable read' | 'serializable'
  readOnly?: boolean
  /** Retries on serialization failure (40001) and deadlock (40P01). @defaultValue 5 */
  maxRetries?: number
  label?: string
  /** Called before each retry with the error and the attempt number about to run (1 = first retry). */
  onRetry?: (err: unknown, attempt: number) => void
}

export interface PoolStats {
  total: number
  idle: number
  active: number
  waiting: number
  /** active / max, 0–1. */
  utilization: number
  max: number
  /** Time callers waited to acquire a client, in ms. */
  acquireWait: { count: number; p50: number; p95: number; p99: number; max: number }
  /** Since creation: failed acquisitions (timeouts, refused), connections lost (error events), clients discarded instead of reused. */
  errors: { acquireFailed: number; connectionLost: number; discarded: number }
}

export interface PoolHandle {
  stats(): PoolStats
}

export interface Database extends Queryable {
  readonly pool: PoolHandle
  /** Runs `fn` in a transaction, retrying serialization failures and deadlocks with backoff. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T>
  /** Borrows one client for `fn` (COPY, cursors, session settings) and always releases it. */
  withClient<T>(fn: (client: PoolClient) => Promise<T>, options?: { label?: string }): Promise<T>
  /** The prom-client registry holding this database's metrics. */
  readonly metrics: Registry
  /** Connection string in use, with the password redacted. */
  readonly displayUrl: string
  /**
   * Subscribes to every finished statement (SQL text, operation, table, label, duration, error):
   * the hook the query monitor uses. Observers run synchronously on the query path: keep them cheap.
   * Returns the unsubscribe function.
   */
  observe(observer: QueryObserver): () => void
  /** Client-side statistics of every `db.query` (normalized statements, percentiles, slow log). */
  readonly monitor: QueryMonitor
  /** pg_stat_statements by snapshot and diff, history and regressions. */
  readonly statements: StatementStats
  /** Index suggestions (verified with hypopg when available), unused and duplicate indexes. */
  readonly advisor: IndexAdvisor
  /** Leaks, long-running and idle-in-transaction sessions of this application; cancel/terminate. */
  readonly health: SessionHealth
  /** Blocked/blocking pairs and the deadlock counter. */
  readonly locks: LockMonitor
  /**
   * EXPLAIN (FORMAT JSON) of one statement with findings. `analyze` runs it inside a transaction
   * that is rolled back (READ ONLY for SELECTs); `$n` without params gives a generic plan.
   */
  explain(
    sql: string,
    params?: readonly unknown[],
    options?: ExplainOptions,
  ): Promise<ExplainResult>
  /** Ends the pool (idempotent). */
  close(): Promise<void>
}

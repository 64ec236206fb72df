import type { Registry } from 'prom-client'
import type { IndexAdvisor } from './advisor/index-advisor.js'
import type { ExplainOptions, ExplainResult } from './explain/explain.js'
import type { SessionHealth } from './health/session-health.js'
import type { QueryObserver } from './instrument/query-instrument.js'
import type { LockMonitor } from './locks/lock-monitor.js'
import type { QueryMonitor } from './monitor/query-monitor.js'
import type { TransactionalQueryable } from './queryable.js'
import type { StatementStats } from './statements/statement-stats.js'

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

/** A database handle from `createDatabase`: the pool, its transactions and its observability parts. */
export interface Database extends TransactionalQueryable {
  readonly pool: PoolHandle
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

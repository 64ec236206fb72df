export { createDatabase } from './database.js'
export { pgErrors, isTransientDbError } from './errors.js'
export type { PgErrorCode, PgErrorFields } from './errors.js'
export { isDataError, sqlState } from './sql-state.js'
export {
  DEFAULTS as DATABASE_DEFAULTS,
  ENV as DATABASE_ENV,
  databaseOptionsFromEnv,
} from './options.js'
export type { DatabaseOptions, PoolOptions } from './options.js'
export type { QueryObservation, QueryObserver } from './instrument/query-instrument.js'
export type { Database, PoolHandle, PoolStats } from './types.js'
export type {
  Queryable,
  QueryOptions,
  Transaction,
  TransactionalQueryable,
  TransactionOptions,
} from './queryable.js'
export { migrate, migrationStatus } from './migrate.js'
export type {
  AppliedMigration,
  MigrateOptions,
  MigrationSet,
  MigrationSource,
  MigrationStatusEntry,
} from './migrate.js'
export { startEmbeddedPostgres } from './embedded-postgres.js'
export type { EmbeddedPostgres, EmbeddedPostgresOptions } from './embedded-postgres.js'
export { OBSERVABILITY_DEFAULTS } from './options.js'
export { normalizeSql } from './monitor/normalize-sql.js'
export type { NormalizedSql } from './monitor/normalize-sql.js'
export { QueryMonitor } from './monitor/query-monitor.js'
export type {
  GroupStats,
  LatencySummary,
  MonitorOptions,
  MonitorStats,
  RecentQuery,
  MonitoredStatement,
  WindowStats,
} from './monitor/query-monitor.js'
export { StatementStats, pgMigrations, diffSnapshots } from './statements/statement-stats.js'
export type {
  HistoryPoint,
  Regression,
  StatementRow,
  StatementSnapshot,
  StatementsOptions,
  StatementsUnavailable,
  TopStatements,
} from './statements/statement-stats.js'
export { checkExplainable, findings as planFindings, FINDING_DEFAULTS } from './explain/explain.js'
export type {
  ExplainOptions,
  ExplainResult,
  FindingKind,
  FindingThresholds,
  PlanFinding,
  PlanNode,
} from './explain/explain.js'
export * from './sql-guard/index.js'
export { IndexAdvisor } from './advisor/index-advisor.js'
export type {
  AdvisorOptions,
  DuplicateIndex,
  IndexAdvice,
  IndexSuggestion,
  LowIndexUsageTable,
  UnusedIndex,
} from './advisor/index-advisor.js'
export { SessionHealth } from './health/session-health.js'
export type {
  AutoTerminateOptions,
  HealthOptions,
  LongRunningReport,
  SessionInfo,
  TerminateResult,
} from './health/session-health.js'
export type { LeakReport } from './health/leak-tracker.js'
export { LockMonitor } from './locks/lock-monitor.js'
export type { BlockedPair, LockContention, LockSession } from './locks/lock-monitor.js'

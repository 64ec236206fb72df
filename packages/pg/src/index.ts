export { createDatabase } from './database.js'
export { pgErrors, isTransientDbError } from './errors.js'
export type { PgErrorCode, PgErrorFields } from './errors.js'
export { DEFAULTS as DATABASE_DEFAULTS, ENV as DATABASE_ENV } from './options.js'
export type { DatabaseOptions, PoolOptions } from './options.js'
export type { QueryObservation, QueryObserver } from './instrument/query-instrument.js'
export type {
  Database,
  PoolHandle,
  PoolStats,
  Queryable,
  QueryOptions,
  Transaction,
  TransactionOptions,
} from './types.js'
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

/** The importer's schema (data_import_jobs, data_migration_logs), for `migrate(db, [importerMigrations])`. */
export const importerMigrations = {
  name: 'importer',
  dir: new URL('../migrations/', import.meta.url),
} as const

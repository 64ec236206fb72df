import { eventsMigrations } from '@strata/events'
import { importerMigrations } from '@strata/importer'
import { pgMigrations, type MigrationSet } from '@strata/pg'

/**
 * Every package's schema, applied in this order by `strata migrate` and on start-up.
 * A package that owns tables exports its MigrationSet; list it here.
 */
export const migrationSets: MigrationSet[] = [pgMigrations, eventsMigrations, importerMigrations]

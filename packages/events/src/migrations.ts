import type { MigrationSet } from '@strata/pg'

/** The events schema: projects, keys, partitioned event tables, dedup, sessions, rollups. */
export const eventsMigrations: MigrationSet = {
  name: 'events',
  dir: new URL('../migrations/', import.meta.url),
}

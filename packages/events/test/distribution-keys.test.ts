import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventsTestDb, type EventsTestDb } from './support/events-db.js'

// Keeps the path to a distributed PostgreSQL (Citus) open: a table distributed by project_id
// can only enforce a primary key, unique index or exclusion constraint that includes
// project_id. The tables are read from the catalog (every table with a project_id column, its
// partitions too), so a table added by a later migration is checked without editing this file.
let t: EventsTestDb

beforeAll(async () => {
  t = await eventsTestDb('distkeys')
})
afterAll(async () => {
  await t?.close()
})

interface UniqueIndex {
  table: string
  index: string
  columns: string[]
}

describe('distribution keys', () => {
  it('every primary key and unique index of a table with project_id includes project_id', async () => {
    const { rows: tables } = await t.db.query<{ table: string }>(
      `SELECT c.relname AS table
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'project_id' AND NOT a.attisdropped
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
        ORDER BY 1`,
    )
    const names = tables.map((r) => r.table)
    // A floor, so a catalog query that silently matches nothing cannot pass.
    for (const expected of [
      'login_events',
      'activity_logs',
      'events',
      'event_dedup',
      'user_sessions',
      'login_rollups_hourly',
      'user_bitmaps',
      'analytics_user_ids',
    ])
      expect(names).toContain(expected)

    // Unique indexes cover primary keys and UNIQUE constraints; exclusion constraints are
    // enforced per shard the same way. Expression columns (attnum 0) show as null.
    const { rows: unique } = await t.db.query<UniqueIndex>(
      `SELECT c.relname AS table, ic.relname AS index,
              array(SELECT a.attname::text
                      FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                      LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                     ORDER BY k.ord) AS columns
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indrelid
         JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE c.relname = ANY($1) AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
          AND (i.indisunique OR i.indisexclusion)
        ORDER BY 1, 2`,
      [names],
    )
    expect(unique.length).toBeGreaterThanOrEqual(names.length - 3)
    const violations = unique
      .filter((u) => !u.columns.includes('project_id'))
      .map((u) => `${u.table}.${u.index} (${u.columns.join(', ')})`)
    // api_keys is looked up by its public prefix before the project is known, so its id and
    // prefix are unique across projects by design: on Citus it is a reference table, next to
    // projects, not a table distributed by project_id. Anything else here is a regression.
    expect(violations).toEqual([
      'api_keys.api_keys_pkey (id)',
      'api_keys.api_keys_prefix_key (prefix)',
    ])
  })

  it('the tables without any primary key or unique index are only the partitioned raw event tables', async () => {
    // Not a Citus requirement (distributed tables need no key), but the list is worth knowing:
    // dedup for these lives in event_dedup, whose key includes project_id.
    const { rows } = await t.db.query<{ table: string }>(
      `SELECT c.relname AS table
         FROM pg_class c
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'project_id' AND NOT a.attisdropped
        WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
          AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique)
        ORDER BY 1`,
    )
    expect(rows.map((r) => r.table)).toEqual(['activity_logs', 'events', 'login_events'])
  })
})

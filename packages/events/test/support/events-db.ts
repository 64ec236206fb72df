import { createDatabase, migrate, type Database } from '@strata/pg'
import { eventsMigrations } from '@strata/events'
import { createTestDatabase, type TestDatabase } from '../../../../test/support/pg.js'

export interface EventsTestDb {
  tdb: TestDatabase
  db: Database
  close(): Promise<void>
}

/** A fresh database with the events schema applied. */
export async function eventsTestDb(prefix = 'ev'): Promise<EventsTestDb> {
  const tdb = await createTestDatabase(prefix)
  const db = await createDatabase({
    url: tdb.url,
    pool: { max: 6 },
    applicationName: 'strata-test',
  })
  await migrate(db, [eventsMigrations])
  return {
    tdb,
    db,
    async close() {
      await db.close()
      await tdb.drop()
    },
  }
}

export async function countRows(db: Database, table: string, projectId?: string): Promise<number> {
  const res = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM ${table}${projectId ? ' WHERE project_id = $1' : ''}`,
    projectId ? [projectId] : [],
  )
  return Number(res.rows[0]!.n)
}

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDatabase, migrate, type Database } from '@strata/pg'
import { importerMigrations } from '@strata/importer'
import { createTestDatabase, type TestDatabase } from '../../../../test/support/pg.js'

export interface ImporterTestEnv {
  db: Database
  tdb: TestDatabase
  dir: string
  /** Writes a file into the temp dir; returns its path. */
  file(name: string, content: string | Buffer): string
  rows<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>
  close(): Promise<void>
}

export async function importerTestEnv(prefix: string, setupSql = ''): Promise<ImporterTestEnv> {
  const tdb = await createTestDatabase(prefix)
  const db = await createDatabase({ url: tdb.url, pool: { max: 6 } })
  await migrate(db, [importerMigrations])
  if (setupSql) await db.query(setupSql)
  const dir = mkdtempSync(join(tmpdir(), `strata-${prefix}-`))
  return {
    db,
    tdb,
    dir,
    file(name, content) {
      const p = join(dir, name)
      writeFileSync(p, content)
      return p
    },
    async rows<T>(sql: string, params: unknown[] = []) {
      return (await db.query(sql, params)).rows as T[]
    },
    async close() {
      await db.close()
      await tdb.drop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

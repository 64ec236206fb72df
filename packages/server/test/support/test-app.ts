import { createDatabase, migrate, type Database, type MigrationSet } from '@strata/pg'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import { createTestDatabase, type TestDatabase } from '../../../../test/support/pg.js'
import { buildApp } from '../../src/app.js'
import { defaultConfig, type StrataConfig } from '../../src/config.js'

export interface TestApp {
  app: FastifyInstance
  db: Database
  tdb: TestDatabase
  /** Closes the app and the pool, then drops the database. */
  close(): Promise<void>
}

/**
 * A fresh database (with `migrations` applied and `prepare` run on it) and `buildApp` over it
 * (or `build`'s app), silent, ready for `inject`. `extend` adds routes before `ready()`.
 */
export async function testApp(
  prefix: string,
  options: {
    config?: Partial<StrataConfig>
    migrations?: MigrationSet[]
    prepare?: (db: Database) => Promise<void>
    extend?: (app: FastifyInstance) => void
    build?: (db: Database, config: StrataConfig) => Promise<FastifyInstance>
    poolMax?: number
  } = {},
): Promise<TestApp> {
  const tdb = await createTestDatabase(prefix)
  const db = await createDatabase({
    url: tdb.url,
    ...(options.poolMax ? { pool: { max: options.poolMax } } : {}),
  })
  try {
    if (options.migrations) await migrate(db, options.migrations)
    await options.prepare?.(db)
    const config = defaultConfig({ databaseUrl: tdb.url, ...options.config })
    const app = options.build
      ? await options.build(db, config)
      : await buildApp(config, { db, logger: pino({ level: 'silent' }) })
    options.extend?.(app)
    await app.ready()
    return {
      app,
      db,
      tdb,
      async close() {
        await app.close()
        await db.close()
        await tdb.drop()
      },
    }
  } catch (err) {
    await db.close()
    await tdb.drop()
    throw err
  }
}

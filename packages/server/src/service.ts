import { join } from 'node:path'
import { createCache, type Cache } from '@strata/cache'
import { createDatabase, migrate, startEmbeddedPostgres, type Database } from '@strata/pg'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { resolveAdminToken } from './admin-token.js'
import { buildApp } from './app.js'
import { databaseOptions, type StrataConfig } from './config.js'
import { createLogger } from './logger.js'
import { migrationSets } from './migrations.js'
import { createRedisClient } from './redis.js'

export interface RunningService {
  app: FastifyInstance
  db: Database
  cache: Cache
  /** http://host:port the service listens on. */
  url: string
  /** Stops accepting, drains in-flight requests, closes the pool, stops embedded Postgres. Idempotent. */
  stop(): Promise<void>
}

interface DatabaseHandle {
  url: string
  description: string
  stop(): Promise<void>
}

/** DATABASE_URL when given, else an embedded PostgreSQL under the data dir. */
export async function openDatabaseUrl(
  config: StrataConfig,
  logger: Logger,
): Promise<DatabaseHandle> {
  if (config.databaseUrl) {
    const u = new URL(config.databaseUrl)
    return {
      url: config.databaseUrl,
      description: `PostgreSQL at ${u.hostname}:${u.port || 5432}${u.pathname} (DATABASE_URL)`,
      stop: async () => {},
    }
  }
  // Connects as the service role the embedded cluster's bootstrap sets up (owns the database,
  // not a superuser); the superuser URL is never handed to the service.
  const embedded = await startEmbeddedPostgres({ dataDir: join(config.dataDir, 'pg'), logger })
  return {
    url: embedded.url,
    description: `embedded PostgreSQL on 127.0.0.1:${embedded.port} as role "${embedded.role}", data in ${embedded.dataDir} (no DATABASE_URL)`,
    stop: () => embedded.stop(),
  }
}

/** Opens the database (embedded or DATABASE_URL) and a pool on it; the caller closes both. */
export async function openDatabase(
  config: StrataConfig,
  logger: Logger,
): Promise<{ db: Database; stop(): Promise<void>; description: string }> {
  const handle = await openDatabaseUrl(config, logger)
  try {
    // Pool sizing, timeouts and the slow-query threshold come from the configuration, already
    // validated; @strata/pg does not read the environment.
    const db = await createDatabase({ ...databaseOptions(config), url: handle.url, logger })
    return {
      db,
      description: handle.description,
      stop: async () => {
        await db.close()
        await handle.stop()
      },
    }
  } catch (err) {
    await handle.stop()
    throw err
  }
}

/** The role the pool's sessions run as, and whether it is a superuser. */
export async function connectedRole(db: Database): Promise<{ role: string; superuser: boolean }> {
  const { rows } = await db.query<{ role: string; superuser: boolean }>(
    'SELECT current_user AS role, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user',
    [],
    { label: 'strata:role' },
  )
  return rows[0] ?? { role: 'unknown', superuser: false }
}

/** What `strata start` and `strata doctor` say when the service runs as a superuser. */
export function superuserWarning(role: string): string {
  return `the service connects to PostgreSQL as "${role}", a superuser: a flaw in it could then run any SQL, read server files or run programs. Connect as a role that owns Strata's schema and is not a superuser (README, Security)`
}

/** `strata start`: database, migrations, app, listen. */
export async function startService(
  config: StrataConfig,
  logger: Logger = createLogger(config),
): Promise<RunningService> {
  const database = await openDatabase(config, logger)
  logger.info(`database: ${database.description}`)
  if (config.databaseUrlPooled) {
    const u = new URL(config.databaseUrlPooled)
    logger.info(
      `hot paths (ingest, keys, sessions, analytics): PgBouncer at ${u.hostname}:${u.port || 5432}${u.pathname} (DATABASE_URL_POOLED)`,
    )
  }
  const connected = await connectedRole(database.db).catch(() => undefined)
  if (connected?.superuser) logger.warn({ role: connected.role }, superuserWarning(connected.role))
  let app: FastifyInstance | undefined
  const redis = config.redisUrl
    ? createRedisClient(config.redisUrl, (err) => logger.warn({ err }, 'redis error'))
    : undefined
  // With Redis: L1 + L2 and the invalidation bus; without: L1 only (DESIGN.md defaults).
  const cache = createCache({
    namespace: 'strata',
    ...(config.redisUrl ? { l2: { redis: config.redisUrl } } : {}),
    logger,
  })
  logger.info(
    config.redisUrl ? 'cache: L1 + Redis (REDIS_URL)' : 'cache: in-process only (no REDIS_URL)',
  )
  const closeClients = async () => {
    await cache.close().catch((err: unknown) => logger.warn({ err }, 'cache close failed'))
    await redis?.quit().catch(() => redis.disconnect())
  }
  try {
    if (config.migrateOnStart) {
      const applied = await migrate(database.db, migrationSets, { logger })
      if (applied.length) logger.info({ applied: applied.length }, 'migrations applied')
    }
    const admin = await resolveAdminToken(config.adminToken, config.dataDir)
    if (admin.created) {
      // Printed once, to stdout rather than the log, so it is seen but not shipped to log storage.
      process.stdout.write(
        `\nOperator token (saved to ${admin.path}, shown once):\n  ${admin.token}\n\n`,
      )
    }
    app = await buildApp(
      { ...config, adminToken: admin.token },
      { db: database.db, logger, cache, ...(redis ? { redis } : {}) },
    )
    const url = await app.listen({ host: config.host, port: config.port })
    let stopping: Promise<void> | undefined
    return {
      app,
      db: database.db,
      cache,
      url,
      stop: () =>
        (stopping ??= (async () => {
          await app!.close()
          await closeClients()
          await database.stop()
        })()),
    }
  } catch (err) {
    await app?.close().catch(() => {})
    await closeClients()
    await database.stop()
    throw err
  }
}

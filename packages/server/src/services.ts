import { createCache, type Cache } from '@strata/cache'
import type { Logger } from '@strata/core'
import {
  EventValidator,
  GroupCommitWriter,
  ProjectStore,
  SessionStore,
  type EventValidatorOptions,
  type GroupCommitWriterOptions,
  type SessionStoreOptions,
} from '@strata/events'
import { createRedisLock, type LockProvider } from '@strata/lock'
import { createDatabase, type Database } from '@strata/pg'
import type { Cluster, Redis } from 'ioredis'
import type { Registry } from 'prom-client'
import { AnalyticsService, type AnalyticsServiceOptions } from './analytics/analytics-service.js'
import { Authenticator } from './auth/authenticator.js'
import { databaseOptions, type StrataConfig } from './config.js'
import { ImportService, type ImportServiceOptions } from './imports/import-service.js'
import { createIngestMetrics } from './ingest-metrics.js'
import { PerformanceService, type PerformanceOptions } from './performance/performance-service.js'
import { ReplicaMonitor, type ReplicaMonitorOptions } from './replica/replica-monitor.js'

/** What the service is built on; the caller owns and closes all of it. */
export interface ServiceDependencies {
  db: Database
  logger: Logger
  /** The service cache; absent: an L1-only cache owned (and closed) by the services. */
  cache?: Cache
  /** The service's Redis connection, when REDIS_URL is set. */
  redis?: Redis | Cluster
}

/** Options of the individual services, over what the config gives (tests, benchmarks). */
export interface ServiceOverrides {
  validator?: EventValidatorOptions
  writer?: GroupCommitWriterOptions
  sessions?: SessionStoreOptions
  analytics?: AnalyticsServiceOptions
  imports?: ImportServiceOptions
  performance?: PerformanceOptions
  /** The read replica's lag monitor (check interval, timeouts, clock). */
  replica?: Omit<ReplicaMonitorOptions, 'primary' | 'replica'>
}

/** Every service of the app, built once; routes reach them as `app.services`. */
export interface Services {
  readonly config: StrataConfig
  readonly db: Database
  /**
   * The pool on DATABASE_URL_POOLED (PgBouncer, transaction mode) that ingest flushes, key
   * lookups, sessions and analytics use; null without it (they use `db`).
   */
  readonly pooledDb: Database | null
  readonly cache: Cache
  readonly redis: Redis | Cluster | null
  readonly projects: ProjectStore
  readonly auth: Authenticator
  readonly validator: EventValidator
  readonly writer: GroupCommitWriter
  readonly sessions: SessionStore
  readonly analytics: AnalyticsService
  /** With DATABASE_READ_URL: the replica's lag and where analytics read; null without. */
  readonly replica: ReplicaMonitor | null
  readonly imports: ImportService
  readonly performance: PerformanceService
  /** prom-client registries for /metrics: database, cache, ingestion, process, read replica. */
  readonly registries: Registry[]
  /** Starts background work: event partition maintenance, session timers, alert evaluation. */
  start(): Promise<void>
  /**
   * Stops it: alert timer and statement sampler, running imports paused, queued events
   * drained to the database, session touches flushed, then what the services own (PgBouncer
   * pool, read replica pool, defaulted cache). Idempotent.
   */
  close(): Promise<void>
}

/**
 * The composition root: builds every service once, in dependency order (cache, PgBouncer pool,
 * read replica, projects and auth, ingestion, analytics, imports, performance). Nothing runs
 * until start().
 */
export async function createServices(
  config: StrataConfig,
  deps: ServiceDependencies,
  overrides: ServiceOverrides = {},
): Promise<Services> {
  const { db, logger: log } = deps
  const cache = deps.cache ?? createCache({ namespace: 'strata' })
  const owned: { name: string; close(): Promise<unknown> }[] = []
  if (!deps.cache) owned.push({ name: 'cache', close: () => cache.close() })

  // Short transactions and single statements (flushes, key lookups, sessions, analytics) go
  // through PgBouncer when there is one. Whatever needs a session of its own stays on `db`:
  // migrations, session advisory locks, imports (COPY and cursors across statements), the
  // query monitor's pg_stat_statements and pg_stat_activity views.
  let pooledDb: Database | null = null
  if (config.databaseUrlPooled) {
    try {
      pooledDb = await openPooledDatabase(config, deps)
    } catch (err) {
      await Promise.all(owned.map((o) => o.close().catch(() => {})))
      throw err
    }
    const pooled = pooledDb
    owned.push({ name: 'PgBouncer pool', close: () => pooled.close() })
  }
  const hotDb = pooledDb ?? db

  const a = overrides.analytics ?? {}
  const readDb = a.readDb ?? hotDb
  let replica: { monitor: ReplicaMonitor; db: Database } | undefined
  if (!a.readDb && config.databaseReadUrl) {
    let replicaDb: Database
    try {
      // Not checked at start: a replica that is down only sends analytics to the primary.
      replicaDb = await createDatabase({
        ...databaseOptions(config),
        url: config.databaseReadUrl,
        connect: false,
        logger: deps.logger,
      })
    } catch (err) {
      await Promise.all(owned.map((o) => o.close().catch(() => {})))
      throw err
    }
    const monitor = new ReplicaMonitor({
      maxLagMs: config.replicaMaxLagMs,
      logger: log,
      ...overrides.replica,
      primary: db,
      replica: replicaDb,
    })
    replica = { monitor, db: replicaDb }
    owned.push({
      name: 'read replica pool',
      close: () => (monitor.close(), replicaDb.close()),
    })
  }

  // With Redis, background jobs that every instance schedules (partition maintenance, session
  // cleanup) run on one instance at a time; without Redis there is one instance to coordinate.
  const lock: LockProvider | undefined = deps.redis
    ? createRedisLock({ redis: deps.redis, prefix: 'strata:lock:' })
    : undefined
  if (lock) owned.unshift({ name: 'lock provider', close: () => lock.close() })

  const projects = new ProjectStore(hotDb)
  const auth = new Authenticator({ store: projects, adminToken: config.adminToken })

  const ingestMetrics = createIngestMetrics()
  const validator = new EventValidator(overrides.validator)
  const writer = new GroupCommitWriter(hotDb, {
    logger: log,
    onFlush: ingestMetrics.onFlush,
    ...(lock ? { lock } : {}),
    ...overrides.writer,
  })
  ingestMetrics.watch(writer)
  // In its own namespace of the service cache: with Redis, its bus makes a logout visible on
  // every instance at once.
  const sessions = new SessionStore(hotDb, {
    logger: log,
    cache: cache.namespace('sessions'),
    ...(lock ? { lock } : {}),
    ...overrides.sessions,
  })

  const analytics = new AnalyticsService({
    ...a,
    limits: {
      ...(config.analyticsMaxRangeMs ? { maxRangeMs: config.analyticsMaxRangeMs } : {}),
      ...a.limits,
    },
    readDb,
    ...(replica ? { replica } : {}),
    cache,
    projects,
    cacheTtls: config.cacheTtls,
  })
  const imports = new ImportService(db, {
    uploadRetentionMs: config.importUploadRetentionMs,
    ...overrides.imports,
    importDir: config.importDir,
    logger: log,
  })
  const p = overrides.performance ?? {}
  const performance = new PerformanceService(db, {
    ...p,
    alerts: {
      thresholds: config.alertThresholds,
      ...(config.alertWebhookUrl ? { webhookUrl: config.alertWebhookUrl } : {}),
      ...p.alerts,
    },
    cache: p.cache === null ? undefined : (p.cache ?? cache),
    logger: log,
    // With Redis: one alert webhook per cluster (leader election), and the instance registry.
    ...(deps.redis ? { redis: deps.redis } : {}),
    ...(replica ? { replica: () => replica.monitor.state } : {}),
  })

  let closing: Promise<void> | undefined
  const step = async (what: string, fn: () => unknown): Promise<void> => {
    try {
      await fn()
    } catch (err) {
      log.warn({ err }, `${what} failed on close`)
    }
  }
  return Object.freeze({
    config,
    db,
    pooledDb,
    cache,
    redis: deps.redis ?? null,
    projects,
    auth,
    validator,
    writer,
    sessions,
    analytics,
    replica: replica?.monitor ?? null,
    imports,
    performance,
    registries: [
      db.metrics,
      cache.registry,
      ingestMetrics.registry,
      performance.registry,
      replica?.monitor.registry,
    ].filter((r): r is Registry => r !== undefined),
    async start() {
      // Not fatal: partitions are also created on demand, and the schema may not be migrated yet.
      await writer
        .start()
        .catch((err: unknown) => log.warn({ err }, 'event partition maintenance failed'))
      sessions.start()
      await replica?.monitor.start()
      performance.start()
      imports.start()
    },
    close() {
      return (closing ??= (async () => {
        replica?.monitor.close()
        await step('performance', () => performance.close())
        await step('imports', () => imports.close())
        // Requests in flight still get their 202 once their events are committed.
        await step('event writer', () => writer.close())
        await step('sessions', () => sessions.close())
        for (const o of owned) await step(o.name, () => o.close())
      })())
    },
  })
}

/**
 * The pool on DATABASE_URL_POOLED: `pgbouncer` mode whatever the URL says (no startup
 * parameters, timeouts as SET LOCAL in transactions), its metrics in the primary's registry
 * under `pool_name="pooled"` and its statements in the primary's query monitor, so the
 * performance service's statement stats, slow log and alerts still see the hot paths. Warns when single statements through it would run without a
 * statement_timeout: PgBouncer cannot forward one per client, so it has to be the role's or
 * the database's default.
 */
async function openPooledDatabase(
  config: StrataConfig,
  deps: ServiceDependencies,
): Promise<Database> {
  const pooled = await createDatabase({
    ...databaseOptions(config),
    url: config.databaseUrlPooled,
    pgbouncer: true,
    name: 'pooled',
    metrics: { registry: deps.db.metrics },
    monitor: false,
    logger: deps.logger,
  })
  pooled.observe(deps.db.monitor)
  // 0 = the operator turned statement timeouts off: nothing to warn about.
  if (config.databasePool.statementTimeoutMs !== 0) {
    const { rows } = await pooled
      .query<{ ms: string }>(
        "SELECT extract(epoch FROM current_setting('statement_timeout')::interval) * 1000 AS ms",
        [],
        { label: 'strata:pooled-settings' },
      )
      .catch(() => ({ rows: [] as { ms: string }[] }))
    if (rows[0] && Number(rows[0].ms) === 0)
      deps.logger.warn(
        'statements through DATABASE_URL_POOLED outside transactions run without a statement_timeout: PgBouncer cannot set one per client; set it on the role (ALTER ROLE … SET statement_timeout) or the database',
      )
  }
  return pooled
}

import { createCache, type Cache } from '@strata/cache'
import type { Database } from '@strata/pg'
import type { Cluster, Redis } from 'ioredis'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client'
import type { StrataConfig } from './config.js'
import { serverErrors } from './errors.js'
import { createLogger } from './logger.js'
import errorsPlugin from './plugins/errors.js'
import healthRoutes from './routes/health.js'
import metricsRoutes from './routes/metrics.js'
import eventsApi from './routes/v1/events-api.js'
import importRoutes from './routes/v1/imports.js'
import analyticsRoutes from './routes/v1/analytics.js'
import dashboardRoutes from './routes/dashboard.js'
import performanceRoutes from './routes/v1/performance.js'

/** A dependency `/readyz` checks; it must throw (or time out) when not ready. */
export interface ReadinessCheck {
  name: string
  check(): Promise<unknown>
  /** @defaultValue 2000 */
  timeoutMs?: number
}

export interface AppDependencies {
  db: Database
  logger?: Logger
  /** The service cache; absent: an L1-only cache owned (and closed) by the app. */
  cache?: Cache
  /** The service's Redis connection, when REDIS_URL is set (rate limits, readiness). */
  redis?: Redis | Cluster
}

declare module 'fastify' {
  interface FastifyInstance {
    config: StrataConfig
    db: Database
    cache: Cache
    redis: Redis | Cluster | null
    readiness: ReadinessCheck[]
    metricsRegistries: Registry[]
  }
}

// HTTP limits: a slow or hostile client can't hold a connection for long.
const HTTP_DEFAULTS = {
  bodyLimit: 512_000, // 500 KB, DESIGN.md's ingestion limit; routes that take uploads raise it
  requestTimeout: 30_000, // 30 s for the whole request
  headersTimeout: 10_000, // 10 s to send the headers (Node's default is 60 s)
  keepAliveTimeout: 72_000, // 72 s, longer than common load balancers' idle timeout
  maxParamLength: 200,
} as const

function trustHops(n: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < n
}

/**
 * Builds the Fastify app. The caller creates the database, Redis client and cache and closes
 * them after `app.close()` (only a defaulted L1-only cache belongs to the app); test with
 * `app.inject()`.
 */
export async function buildApp(
  config: StrataConfig,
  deps: AppDependencies,
): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: (deps.logger ?? createLogger(config)) as FastifyBaseLogger,
    bodyLimit: HTTP_DEFAULTS.bodyLimit,
    requestTimeout: HTTP_DEFAULTS.requestTimeout,
    keepAliveTimeout: HTTP_DEFAULTS.keepAliveTimeout,
    routerOptions: { maxParamLength: HTTP_DEFAULTS.maxParamLength },
    // A hop count trusts the nearest n proxies (what proxy-addr does for a number).
    trustProxy:
      typeof config.trustProxy === 'number' ? trustHops(config.trustProxy) : config.trustProxy,
    // Our onRequest hook answers 503 in the error format while closing (see below).
    return503OnClosing: false,
    // Fastify's two info lines per request are too much at ingestion rates; onResponse logs instead.
    logController: new LogController({ disableRequestLogging: true }),
  })
  app.server.headersTimeout = HTTP_DEFAULTS.headersTimeout

  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const httpDuration = new Histogram({
    name: 'http_server_request_duration_seconds',
    help: 'Duration of HTTP server requests',
    labelNames: ['http_request_method', 'http_route', 'http_response_status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  app.addHook('onResponse', async (request, reply) => {
    httpDuration.observe(
      {
        http_request_method: request.method,
        http_route: request.routeOptions.url ?? 'unmatched',
        http_response_status_code: reply.statusCode,
      },
      reply.elapsedTime / 1000,
    )
    if (reply.statusCode >= 500)
      request.log.warn({ req: request, res: reply, ms: reply.elapsedTime }, 'request failed')
    else request.log.debug({ req: request, res: reply, ms: reply.elapsedTime }, 'request')
  })

  // While draining on shutdown, new requests get 503 + Retry-After in our format, and the
  // connection is closed so clients reconnect to another instance.
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return
    void reply.header('connection', 'close')
    throw serverErrors.create('STRATA_SHUTTING_DOWN')
  })

  app.decorate('config', config)
  app.decorate('db', deps.db)
  const cache = deps.cache ?? createCache({ namespace: 'strata' })
  if (!deps.cache) app.addHook('onClose', () => cache.close())
  app.decorate('cache', cache)
  app.decorate<FastifyInstance['redis']>('redis', deps.redis ?? null)
  const readiness: ReadinessCheck[] = [
    {
      name: 'database',
      check: () => deps.db.query('SELECT 1', [], { label: 'readyz', timeoutMs: 2000 }),
    },
  ]
  if (deps.redis) readiness.push({ name: 'redis', check: () => deps.redis!.ping() })
  app.decorate('readiness', readiness)
  app.decorate(
    'metricsRegistries',
    [registry, deps.db.metrics, cache.registry].filter((r): r is Registry => r !== undefined),
  )

  await app.register(errorsPlugin)
  await app.register(healthRoutes)
  await app.register(metricsRoutes)
  await app.register(eventsApi)
  await app.register(importRoutes)
  await app.register(performanceRoutes, {
    alerts: {
      thresholds: config.alertThresholds,
      ...(config.alertWebhookUrl ? { webhookUrl: config.alertWebhookUrl } : {}),
    },
  })
  await app.register(
    analyticsRoutes,
    config.analyticsMaxRangeMs ? { analytics: { maxRangeMs: config.analyticsMaxRangeMs } } : {},
  )
  await app.register(dashboardRoutes, config.dashboardDir ? { dir: config.dashboardDir } : {})
  return app
}

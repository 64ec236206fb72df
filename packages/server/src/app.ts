import type { Cache } from '@strata/cache'
import type { Database } from '@strata/pg'
import type { Cluster, Redis } from 'ioredis'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client'
import type { StrataConfig } from './config.js'
import { serverErrors } from './errors.js'
import { createLogger } from './logger.js'
import { AuthFailureLimiter, type AuthFailureLimiterOptions } from './auth/failure-limiter.js'
import authPlugin from './plugins/auth.js'
import errorsPlugin, { clientErrorHandler, frameworkErrorHandler } from './plugins/errors.js'
import ingestBody, { type IngestBodyOptions } from './plugins/ingest-body.js'
import routeRateLimit, {
  type ProjectRateLimitOptions,
  type RateLimitedRoutes,
  type RouteRateLimit,
} from './plugins/rate-limit.js'
import servicesPlugin from './plugins/services.js'
import dashboardRoutes from './routes/dashboard.js'
import healthRoutes from './routes/health.js'
import metricsRoutes from './routes/metrics.js'
import analyticsRoutes from './routes/v1/analytics.js'
import importRoutes from './routes/v1/imports.js'
import ingestRoutes from './routes/v1/ingest.js'
import performanceRoutes from './routes/v1/performance.js'
import projectRoutes from './routes/v1/projects.js'
import segmentRoutes from './routes/v1/segment.js'
import sessionRoutes from './routes/v1/sessions.js'
import { createServices, type ServiceOverrides, type Services } from './services.js'

/** A dependency `/readyz` checks; it must throw (or time out) when not ready. */
export interface ReadinessCheck {
  name: string
  check(): Promise<unknown>
  /** @defaultValue 2000 */
  timeoutMs?: number
}

/** Service options over the config's, plus the ingestion routes' rate limit (tests, benchmarks). */
export interface AppOverrides extends ServiceOverrides {
  /** Per-project limit of the ingestion routes; false: none. @defaultValue 20000 per '1s' */
  rateLimit?: ProjectRateLimitOptions | false
  /** Per-key limits of the analytics, imports and performance routes, over the config's; false: none. */
  routeRateLimits?: Partial<Record<Exclude<RateLimitedRoutes, 'ingest'>, RouteRateLimit | false>>
  /** The failed-authentication limit per client address, over the config's (e.g. its Redis nameSpace). */
  authFailures?: Partial<Omit<AuthFailureLimiterOptions, 'redis' | 'logger'>>
  /** The ingestion body parser's bounds (nesting, unauthenticated size, bytes in flight). */
  ingestBody?: Partial<IngestBodyOptions>
}

export interface AppDependencies {
  db: Database
  logger?: Logger
  /** The service cache; absent: an L1-only cache owned (and closed) by the app. */
  cache?: Cache
  /** The service's Redis connection, when REDIS_URL is set (rate limits, readiness). */
  redis?: Redis | Cluster
  overrides?: AppOverrides
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
 * Builds the Fastify app over the services of createServices. The caller creates the
 * database, Redis client and cache and closes them after `app.close()` (only a defaulted
 * L1-only cache belongs to the app); test with `app.inject()`.
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
    // Refusals made before a route runs (unparsable requests, header overflow, timeouts, URLs
    // that do not decode) answer in the same error envelope as everything else.
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
  })
  app.server.headersTimeout = HTTP_DEFAULTS.headersTimeout
  const { overrides = {} } = deps
  const services = await createServices(
    config,
    {
      db: deps.db,
      logger: app.log,
      ...(deps.cache ? { cache: deps.cache } : {}),
      ...(deps.redis ? { redis: deps.redis } : {}),
    },
    overrides,
  )
  try {
    await registerAll(app, services, overrides)
  } catch (err) {
    await services.close()
    throw err
  }
  return app
}

async function registerAll(
  app: FastifyInstance,
  services: Services,
  overrides: AppOverrides,
): Promise<void> {
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

  const { config, db, cache, redis } = services
  app.decorate('config', config)
  app.decorate('db', db)
  app.decorate('cache', cache)
  app.decorate<FastifyInstance['redis']>('redis', redis)
  const readiness: ReadinessCheck[] = [
    {
      name: 'database',
      check: () => db.query('SELECT 1', [], { label: 'readyz', timeoutMs: 2000 }),
    },
  ]
  if (redis) readiness.push({ name: 'redis', check: () => redis.ping() })
  app.decorate('readiness', readiness)
  app.decorate('metricsRegistries', [registry, ...services.registries])

  await app.register(errorsPlugin)
  await app.register(servicesPlugin, { services })
  // Per client address: failed authentications, before any key lookup (see plugins/auth.ts).
  const failures = new AuthFailureLimiter({
    ...config.authFailureLimit,
    ...overrides.authFailures,
    redis,
    logger: app.log,
  })
  await app.register(authPlugin, { authenticator: services.auth, failures })
  await app.register(healthRoutes)
  await app.register(metricsRoutes)
  // Events, Segment, sessions, projects: the ingestion body parser and the per-project rate
  // limit apply to this scope only.
  await app.register(async (scope) => {
    await scope.register(ingestBody, overrides.ingestBody ?? {})
    const ingestLimit = overrides.rateLimit ?? config.rateLimits.ingest
    if (ingestLimit !== false)
      await scope.register(routeRateLimit, {
        routes: 'ingest',
        ...(ingestLimit ? { limit: ingestLimit } : {}),
        redis,
      })
    await scope.register(ingestRoutes)
    await scope.register(segmentRoutes)
    await scope.register(sessionRoutes)
    await scope.register(projectRoutes)
  })
  // Each in its own scope with a per-key rate limit.
  for (const [routes, plugin] of [
    ['imports', importRoutes],
    ['performance', performanceRoutes],
    ['analytics', analyticsRoutes],
  ] as const) {
    const limit = overrides.routeRateLimits?.[routes] ?? config.rateLimits[routes]
    await app.register(async (scope) => {
      if (limit !== false)
        await scope.register(routeRateLimit, { routes, ...(limit ? { limit } : {}), redis })
      await scope.register(plugin)
    })
  }
  await app.register(dashboardRoutes, config.dashboardDir ? { dir: config.dashboardDir } : {})
}

import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Cluster, Redis } from 'ioredis'
import { closeIfBodyUnread } from '../auth/unread-body.js'
import { serverErrors } from '../errors.js'

export interface RouteRateLimit {
  /** Requests per window. */
  max: number
  /** The window: ms, or a duration such as '1s' or '1m'. */
  timeWindow: string | number
  /** Prefix of the counters' keys. @defaultValue `strata-rl-` (ingestion), `strata-rl-<routes>-` */
  nameSpace?: string
}

/** The ingestion routes' limit (an older name of RouteRateLimit). */
export type ProjectRateLimitOptions = RouteRateLimit

export type RateLimitedRoutes = 'ingest' | 'analytics' | 'imports' | 'performance'

/** Defaults per class of routes: ingestion per project, the others per key (or operator token). */
export const RATE_LIMIT_DEFAULTS: Readonly<Record<RateLimitedRoutes, RouteRateLimit>> =
  Object.freeze({
    ingest: { max: 20_000, timeWindow: '1s' },
    // A dashboard page loads about ten analytics answers (cached) and refreshes them.
    analytics: { max: 1200, timeWindow: '1m' },
    // Job creation, listing and progress polling (the dashboard polls while a job runs).
    imports: { max: 600, timeWindow: '1m' },
    // Some of these run EXPLAIN or read pg_stat_statements.
    performance: { max: 600, timeWindow: '1m' },
  })

export interface RouteRateLimitOptions {
  routes: RateLimitedRoutes
  /** @defaultValue RATE_LIMIT_DEFAULTS[routes] */
  limit?: RouteRateLimit
  redis?: Redis | Cluster | null
}

/**
 * A rate limit for the scope it is registered in: ingestion per project, other routes per
 * principal (each key; the operator token is one principal). Counters are shared by every
 * instance through `redis` when given; if Redis fails, requests are let through rather than
 * refused. Answers 429 STRATA_RATE_LIMITED with Retry-After.
 *
 * It runs right after authentication, before the body is read (preParsing); a request
 * authenticated by its body's `writeKey` is counted once that is known (preHandler).
 */
async function routeRateLimit(app: FastifyInstance, opts: RouteRateLimitOptions): Promise<void> {
  const { routes } = opts
  const rl = opts.limit ?? RATE_LIMIT_DEFAULTS[routes]
  const perProject = routes === 'ingest'
  await app.register(rateLimit, {
    global: false,
    max: rl.max,
    timeWindow: rl.timeWindow,
    keyGenerator: (request) => {
      const p = request.principal
      if (p?.type === 'key') return perProject ? `project:${p.projectId}` : `key:${p.keyId}`
      return p?.type === 'operator' ? 'operator' : `ip:${request.ip}`
    },
    nameSpace: rl.nameSpace ?? (perProject ? 'strata-rl-' : `strata-rl-${routes}-`),
    ...(opts.redis ? { redis: opts.redis, skipOnError: true } : {}),
    errorResponseBuilder: (_request, context) =>
      serverErrors.create('STRATA_RATE_LIMITED', {
        message: `Rate limit of ${context.max} ${routes} requests per ${context.after} exceeded for this ${perProject ? 'project' : 'key'}`,
        details: { retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)) },
      }),
  })
  const limit = app.rateLimit()
  app.addHook('preParsing', async (request: FastifyRequest, reply: FastifyReply, payload) => {
    if (!request.principal) return payload
    try {
      await limit.call(app, request, reply)
    } catch (err) {
      closeIfBodyUnread(request, reply)
      throw err
    }
    return payload
  })
  // Body-writeKey requests (a no-op for requests counted above).
  app.addHook('preHandler', limit)
}

export default fp(routeRateLimit, { name: 'strata-route-rate-limit' })

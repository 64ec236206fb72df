import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Cluster, Redis } from 'ioredis'
import { serverErrors } from '../errors.js'

export interface ProjectRateLimitOptions {
  /** Requests per project per window. @defaultValue 20000 */
  max: number
  /** @defaultValue '1s' */
  timeWindow: string | number
  /** Prefix of the counters' keys. @defaultValue 'strata-rl-' */
  nameSpace?: string
}

/**
 * A per-project rate limit for the scope it is registered in (per client address for the
 * operator). Counters are shared by every instance through `redis` when given; if Redis
 * fails, requests are let through rather than refused.
 */
async function projectRateLimit(
  app: FastifyInstance,
  opts: { limit?: ProjectRateLimitOptions; redis?: Redis | Cluster | null },
): Promise<void> {
  const rl = opts.limit ?? { max: 20_000, timeWindow: '1s' }
  await app.register(rateLimit, {
    global: true,
    max: rl.max,
    timeWindow: rl.timeWindow,
    // After auth (preValidation), so the limit is per project, not per client address.
    hook: 'preHandler',
    keyGenerator: (request) => {
      const p = request.principal
      return p?.type === 'key' ? `project:${p.projectId}` : `ip:${request.ip}`
    },
    nameSpace: rl.nameSpace ?? 'strata-rl-',
    ...(opts.redis ? { redis: opts.redis, skipOnError: true } : {}),
    errorResponseBuilder: (_request, context) =>
      serverErrors.create('STRATA_RATE_LIMITED', {
        message: `Rate limit of ${context.max} requests per ${context.after} exceeded for this project`,
        details: { retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)) },
      }),
  })
}

export default fp(projectRateLimit, { name: 'strata-project-rate-limit' })

import { eventsErrors, safeEqual } from '@strata/events'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

/**
 * Prometheus text format: the service's own registry plus every library registry (db, cache).
 * The series name tables, statement labels, routes and cache key prefixes, so with
 * STRATA_METRICS_TOKEN set a scrape must send `Authorization: Bearer <token>` (401 otherwise).
 */
export default async function metricsRoutes(app: FastifyInstance): Promise<void> {
  const token = app.config.metricsToken
  const requireToken = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!token) return
    const header = request.headers.authorization
    const m = header ? /^bearer\s+(\S+)\s*$/i.exec(header) : null
    if (m && safeEqual(m[1]!, token)) return
    void reply.header('www-authenticate', 'Bearer realm="metrics"')
    throw header
      ? eventsErrors.create('STRATA_AUTH_INVALID', { message: 'Invalid metrics token' })
      : eventsErrors.create('STRATA_AUTH_MISSING', {
          message: 'Missing credentials: send Authorization: Bearer <STRATA_METRICS_TOKEN>',
        })
  }

  app.get('/metrics', { onRequest: requireToken }, async (_request, reply) => {
    const texts = await Promise.all(app.metricsRegistries.map((r) => r.metrics()))
    return reply
      .type('text/plain; version=0.0.4; charset=utf-8')
      .send(texts.filter(Boolean).join('\n'))
  })
}

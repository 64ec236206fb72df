import type { FastifyInstance } from 'fastify'

/** Prometheus text format: the service's own registry plus every library registry (db, cache). */
export default async function metricsRoutes(app: FastifyInstance): Promise<void> {
  app.get('/metrics', async (_request, reply) => {
    const texts = await Promise.all(app.metricsRegistries.map((r) => r.metrics()))
    return reply
      .type('text/plain; version=0.0.4; charset=utf-8')
      .send(texts.filter(Boolean).join('\n'))
  })
}

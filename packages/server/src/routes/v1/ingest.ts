import { checkEnvelope, ingestEventsBatch, ingestOne } from '@strata/events'
import type { FastifyInstance } from 'fastify'
import { ingestContext } from '../../http/ingest-context.js'

/** POST /v1/logins, /v1/activities, /v1/events/batch (write key). */
export default async function ingestRoutes(app: FastifyInstance): Promise<void> {
  const s = app.services
  const route = { preValidation: app.requirePrincipal({ kinds: ['write'] }) }

  app.post('/v1/logins', route, async (request, reply) => {
    const ctx = ingestContext(request)
    const messageId = await ingestOne(s, s.validator.login(request.body, ctx))
    return reply.code(202).send({ messageId })
  })

  app.post('/v1/activities', route, async (request, reply) => {
    const ctx = ingestContext(request)
    const messageId = await ingestOne(s, s.validator.activity(request.body, ctx))
    return reply.code(202).send({ messageId })
  })

  app.post('/v1/events/batch', route, async (request, reply) => {
    const body = checkEnvelope(request.body, 'events')
    const answer = await ingestEventsBatch(s, body, ingestContext(request, body.sentAt))
    const allRejected = answer.accepted === 0 && answer.duplicates === 0
    return reply.code(allRejected ? 400 : 202).send(answer)
  })
}

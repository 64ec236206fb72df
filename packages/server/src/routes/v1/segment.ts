import {
  checkEnvelope,
  ingestSegmentBatch,
  ingestSegmentMessage,
  SEGMENT_TYPES,
} from '@strata/events'
import type { FastifyInstance } from 'fastify'
import { ingestContext } from '../../http/ingest-context.js'

/**
 * Segment's tracking API (`/v1/batch`, `/v1/track`, ...) so Segment and RudderStack SDKs work
 * unchanged: auth by Basic `<writeKey>:`, Bearer or body `writeKey`; answers 200
 * `{"success":true}` once committed. A partly invalid batch still answers 200 (SDKs would drop
 * the whole batch on a 4xx) with the rejected items listed; an all-invalid batch answers 400.
 */
export default async function segmentRoutes(app: FastifyInstance): Promise<void> {
  const s = app.services
  const route = { preValidation: app.requirePrincipal({ kinds: ['write'], bodyWriteKey: true }) }

  app.post('/v1/batch', route, async (request, reply) => {
    const body = checkEnvelope(request.body, 'batch')
    const answer = await ingestSegmentBatch(s, body, ingestContext(request, body.sentAt))
    if (answer.accepted === 0 && answer.duplicates === 0)
      return reply.code(400).send({ success: false, ...answer })
    return reply
      .code(200)
      .send(answer.rejected.length ? { success: true, ...answer } : { success: true })
  })

  for (const type of SEGMENT_TYPES) {
    app.post(`/v1/${type}`, route, async (request, reply) => {
      await ingestSegmentMessage(s, type, request.body, ingestContext(request))
      return reply.code(200).send({ success: true })
    })
  }
}

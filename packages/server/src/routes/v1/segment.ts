import { SEGMENT_TYPES } from '@strata/events'
import type { FastifyInstance } from 'fastify'
import { requirePrincipal } from '../../plugins/auth.js'
import type { EventsServices } from './events-api.js'
import { checkEnvelope, ingestBatch, ingestContext, ingestOne } from './ingest.js'

/**
 * Segment's tracking API (`/v1/batch`, `/v1/track`, ...) so Segment and RudderStack SDKs work
 * unchanged: auth by Basic `<writeKey>:`, Bearer or body `writeKey`; answers 200
 * `{"success":true}` once committed. A partly invalid batch still answers 200 (SDKs would drop
 * the whole batch on a 4xx) with the rejected items listed; an all-invalid batch answers 400.
 */
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export default async function segmentRoutes(
  app: FastifyInstance,
  opts: { services: EventsServices },
): Promise<void> {
  const s = opts.services
  const auth = requirePrincipal(s.auth, { kinds: ['write'], bodyWriteKey: true })

  app.post('/v1/batch', { preValidation: auth }, async (request, reply) => {
    const body = checkEnvelope(request.body, 'batch')
    const ctx = ingestContext(request, body.sentAt)
    // Batch-level context applies to messages that carry none (Segment's HTTP API).
    const shared = isObject(body.context) ? body.context : undefined
    const answer = await ingestBatch(
      s,
      body.batch as unknown[],
      (item) =>
        s.validator.segment(
          shared && isObject(item) && item.context === undefined
            ? { ...item, context: shared }
            : item,
          ctx,
        ),
      s.validator.limits.maxSegmentBatchItems,
    )
    if (answer.accepted === 0 && answer.duplicates === 0)
      return reply.code(400).send({ success: false, ...answer })
    return reply
      .code(200)
      .send(answer.rejected.length ? { success: true, ...answer } : { success: true })
  })

  for (const type of SEGMENT_TYPES) {
    app.post(`/v1/${type}`, { preValidation: auth }, async (request, reply) => {
      const ctx = ingestContext(request)
      const body = request.body
      // The route names the type, as in Segment's API.
      const message =
        typeof body === 'object' && body !== null && !Array.isArray(body) ? { ...body, type } : body
      await ingestOne(s, s.validator.segment(message, ctx))
      return reply.code(200).send({ success: true })
    })
  }
}

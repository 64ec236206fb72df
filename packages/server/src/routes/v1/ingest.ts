import {
  eventsErrors,
  type EventRow,
  type IngestContext,
  type RowResult,
  type ValidationResult,
} from '@strata/events'
import type { StrataError } from '@strata/core'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { projectOf, requirePrincipal } from '../../plugins/auth.js'
import type { EventsServices } from './events-api.js'

export interface BatchAnswer {
  accepted: number
  duplicates: number
  rejected: { index: number; messageId: string | null; error: { code: string; message: string } }[]
}

export function ingestContext(request: FastifyRequest, sentAt?: unknown): IngestContext {
  return {
    projectId: projectOf(request),
    receivedAt: Date.now(),
    sentAt,
    ip: request.ip,
    userAgent: request.headers['user-agent'] ?? null,
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The envelope's own keys must be safe too (items are checked one by one). */
export function checkEnvelope(body: unknown, itemsKey: string): Record<string, unknown> {
  if (!isObject(body))
    throw eventsErrors.create('STRATA_EVENT_INVALID', { message: 'Body must be a JSON object' })
  for (const k of Object.keys(body)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype')
      throw eventsErrors.create('STRATA_EVENT_FORBIDDEN_KEY', {
        message: `Body key ${k} is not accepted`,
      })
  }
  if (!Array.isArray(body[itemsKey]))
    throw eventsErrors.create('STRATA_EVENT_INVALID', {
      message: `Body must have an array "${itemsKey}"`,
    })
  return body
}

/**
 * Validates items one by one, writes the valid ones in one group-commit write, and reports
 * per item. Waits for COMMIT; writer refusals (503) propagate to the error handler.
 */
export async function ingestBatch(
  services: EventsServices,
  items: unknown[],
  validate: (item: unknown) => ValidationResult,
  max = services.validator.limits.maxBatchItems,
): Promise<BatchAnswer> {
  if (items.length === 0) throw eventsErrors.create('STRATA_BATCH_EMPTY')
  if (items.length > max)
    throw eventsErrors.create('STRATA_BATCH_TOO_LARGE', {
      message: `Batch has ${items.length} events; the limit is ${max}`,
      details: { limit: max, received: items.length },
    })
  const answer: BatchAnswer = { accepted: 0, duplicates: 0, rejected: [] }
  const rows: EventRow[] = []
  const indexes: number[] = []
  items.forEach((item, index) => {
    const r = validate(item)
    if (r.ok) {
      rows.push(r.row)
      indexes.push(index)
    } else answer.rejected.push({ index, messageId: r.messageId, error: brief(r.error) })
  })
  const results: RowResult[] = await services.writer.write(rows)
  results.forEach((r, i) => {
    if (r.status === 'inserted') answer.accepted++
    else if (r.status === 'duplicate') answer.duplicates++
    else
      answer.rejected.push({
        index: indexes[i]!,
        messageId: rows[i]!.messageId,
        error: brief(r.error),
      })
  })
  answer.rejected.sort((a, b) => a.index - b.index)
  return answer
}

function brief(e: StrataError): { code: string; message: string } {
  return { code: e.code, message: e.message }
}

/** One event: throws the item's error (400) or returns its messageId once committed. */
export async function ingestOne(
  services: EventsServices,
  result: ValidationResult,
): Promise<string> {
  if (!result.ok) throw result.error
  const [r] = await services.writer.write([result.row])
  if (r?.status === 'rejected') throw r.error
  return result.row.messageId
}

/** POST /v1/logins, /v1/activities, /v1/events/batch (write key). */
export default async function ingestRoutes(
  app: FastifyInstance,
  opts: { services: EventsServices },
): Promise<void> {
  const s = opts.services
  const auth = requirePrincipal(s.auth, { kinds: ['write'] })

  app.post('/v1/logins', { preValidation: auth }, async (request, reply) => {
    const ctx = ingestContext(request)
    const messageId = await ingestOne(s, s.validator.login(request.body, ctx))
    return reply.code(202).send({ messageId })
  })

  app.post('/v1/activities', { preValidation: auth }, async (request, reply) => {
    const ctx = ingestContext(request)
    const messageId = await ingestOne(s, s.validator.activity(request.body, ctx))
    return reply.code(202).send({ messageId })
  })

  app.post('/v1/events/batch', { preValidation: auth }, async (request, reply) => {
    const body = checkEnvelope(request.body, 'events')
    const ctx = ingestContext(request, body.sentAt)
    const answer = await ingestBatch(s, body.events as unknown[], (item) =>
      s.validator.batchItem(item, ctx),
    )
    const allRejected = answer.accepted === 0 && answer.duplicates === 0
    return reply.code(allRejected ? 400 : 202).send(answer)
  })
}

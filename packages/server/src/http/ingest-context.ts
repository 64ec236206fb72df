import type { IngestContext } from '@strata/events'
import type { FastifyRequest } from 'fastify'
import { projectOf } from '../auth/principal.js'

/** What the writer records about the request an event came in (project, time, ip, user agent). */
export function ingestContext(request: FastifyRequest, sentAt?: unknown): IngestContext {
  return {
    projectId: projectOf(request),
    receivedAt: Date.now(),
    sentAt,
    ip: request.ip,
    userAgent: request.headers['user-agent'] ?? null,
  }
}

import type { IngestContext } from '@strata/events'
import type { FastifyRequest } from 'fastify'
import { projectOf } from '../auth/principal.js'

// Strata's own ingestion routes, called server to server: the request's User-Agent is the
// sending backend's HTTP client (node-fetch, curl, Go-http-client), not the user's browser, so a
// login without `userAgent` must not be attributed to it (device "bot"). The Segment routes are
// called by the browser SDK itself, whose User-Agent is the user's.
const SERVER_TO_SERVER_ROUTES: ReadonlySet<string> = new Set([
  '/v1/logins',
  '/v1/activities',
  '/v1/events/batch',
])

/** What the writer records about the request an event came in (project, time, ip, user agent). */
export function ingestContext(request: FastifyRequest, sentAt?: unknown): IngestContext {
  const fromBrowser = !SERVER_TO_SERVER_ROUTES.has(request.routeOptions.url ?? request.url)
  return {
    projectId: projectOf(request),
    receivedAt: Date.now(),
    sentAt,
    ip: request.ip,
    userAgent: fromBrowser ? (request.headers['user-agent'] ?? null) : null,
  }
}

import { defineErrors } from '@strata/core'

/**
 * Every error @strata/events throws on purpose. Per-item ingestion errors use STRATA_EVENT_*;
 * the codes are stable (clients branch on them) and listed in docs/reference/errors.md.
 */
export const eventsErrors = defineErrors('events', {
  STRATA_EVENT_INVALID: { status: 400, message: 'Event does not match its schema' },
  STRATA_EVENT_UNKNOWN_TYPE: { status: 400, message: 'Unknown event type' },
  STRATA_EVENT_INVALID_TIMESTAMP: {
    status: 400,
    message: 'Timestamp must be an ISO 8601 date-time with a time zone (Z or ±hh:mm)',
  },
  STRATA_EVENT_TIMESTAMP_OUT_OF_RANGE: {
    status: 400,
    message: 'Timestamp is more than 24 h in the future or older than the retention window',
  },
  STRATA_EVENT_INVALID_STRING: {
    status: 400,
    message: 'String contains a NUL character or an unpaired UTF-16 surrogate',
  },
  STRATA_EVENT_FORBIDDEN_KEY: {
    status: 400,
    message: 'Object keys __proto__, constructor and prototype are not accepted',
  },
  STRATA_EVENT_TOO_DEEP: { status: 400, message: 'Event nesting is too deep' },
  STRATA_EVENT_NUMBER_OUT_OF_RANGE: {
    status: 400,
    message: 'Number is not finite (a literal such as 1e400 overflows a double)',
  },
  STRATA_EVENT_INVALID_IP: { status: 400, message: 'ip is not an IPv4 or IPv6 address' },
  STRATA_EVENT_REJECTED_BY_DB: { status: 400, message: 'PostgreSQL rejected this event' },
  STRATA_BATCH_EMPTY: { status: 400, message: 'Batch contains no events' },
  STRATA_BATCH_TOO_LARGE: { status: 413, message: 'Batch contains too many events' },
  STRATA_INGEST_OVERLOADED: {
    status: 503,
    message: 'Ingestion buffer is full; retry after the indicated delay',
  },
  STRATA_INGEST_CLOSED: { status: 503, message: 'Ingestion is shutting down' },
  STRATA_INGEST_FAILED: { status: 500, message: 'Events could not be written' },
  STRATA_AUTH_MISSING: { status: 401, message: 'Missing credentials' },
  STRATA_AUTH_INVALID: { status: 401, message: 'Invalid or revoked credentials' },
  STRATA_AUTH_FORBIDDEN: { status: 403, message: 'These credentials may not do that' },
  STRATA_PROJECT_NOT_FOUND: { status: 404, message: 'Project not found' },
  STRATA_KEY_NOT_FOUND: { status: 404, message: 'API key not found' },
  STRATA_SESSION_NOT_FOUND: { status: 404, message: 'Session not found' },
  STRATA_SESSION_INVALID: { status: 400, message: 'Invalid session request' },
})

export type EventsErrorCode = keyof typeof eventsErrors.definitions

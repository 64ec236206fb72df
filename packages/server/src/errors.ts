import { defineErrors } from '@strata/core'

// Authentication codes (STRATA_AUTH_*) belong to @strata/events, which owns projects and keys.

/** Errors raised at the HTTP edge and by the service's own start-up. */
export const serverErrors = defineErrors('server', {
  STRATA_CONFIG_INVALID: { status: 500, message: 'Invalid configuration' },
  STRATA_BAD_REQUEST: { status: 400, message: 'Bad request' },
  STRATA_VALIDATION_FAILED: { status: 400, message: 'Request validation failed' },
  STRATA_MALFORMED_JSON: { status: 400, message: 'Request body is not valid JSON' },
  STRATA_BODY_TOO_LARGE: { status: 413, message: 'Request body is too large' },
  STRATA_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported media type' },
  STRATA_UNSUPPORTED_ENCODING: { status: 415, message: 'Unsupported content encoding' },
  STRATA_NOT_FOUND: { status: 404, message: 'Not found' },
  STRATA_METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed for this path' },
  STRATA_URI_TOO_LONG: { status: 414, message: 'Request URL is too long' },
  STRATA_HEADERS_TOO_LARGE: { status: 431, message: 'Request headers are too large' },
  STRATA_EXPECTATION_FAILED: { status: 417, message: 'Unsupported Expect header' },
  STRATA_RATE_LIMITED: { status: 429, message: 'Too many requests' },
  STRATA_REQUEST_TIMEOUT: { status: 408, message: 'Request timed out' },
  STRATA_SHUTTING_DOWN: { status: 503, message: 'The service is shutting down' },
  STRATA_NOT_READY: { status: 503, message: 'A dependency is not ready' },
  STRATA_DASHBOARD_NOT_BUILT: {
    status: 503,
    message: 'The dashboard is not built (run `npm run build`)',
  },
  STRATA_INTERNAL: { status: 500, message: 'Internal error' },
})

// Every failed call becomes an ApiError carrying the service's own code and message
// (`{"error":{"code","message","details"}}`), so pages can show exactly what the server said.

export class ApiError extends Error {
  override readonly name = 'ApiError'
  constructor(
    /** HTTP status; 0 when the service could not be reached. */
    readonly status: number,
    /** The service's STRATA_* code, or NETWORK_ERROR / HTTP_<status> when it sent none. */
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message)
  }

  /** The credential was refused: sign in again. */
  get unauthorized(): boolean {
    return this.status === 401
  }

  /** The credential is valid but not allowed here (a project key on an operator route). */
  get forbidden(): boolean {
    return this.status === 403
  }
}

const FALLBACK: Record<number, string> = {
  400: 'Bad request',
  401: 'Invalid key',
  403: 'This key is not allowed here',
  404: 'Not found',
  429: 'Too many requests; try again shortly',
  500: 'The service failed',
  502: 'Bad gateway',
  503: 'The service is unavailable',
  504: 'Gateway timeout',
}

/**
 * Builds the error for a non-2xx answer from its status and body text. A 401 always reads
 * "Invalid key: …" so that the sign-in form can say why it refused.
 */
export function errorFromResponse(status: number, bodyText: string): ApiError {
  let code = `HTTP_${status}`
  let message = FALLBACK[status] ?? `HTTP ${status}`
  let details: unknown
  try {
    const body = JSON.parse(bodyText) as {
      error?: { code?: unknown; message?: unknown; details?: unknown }
    }
    const e = body?.error
    if (e && typeof e === 'object') {
      if (typeof e.code === 'string' && e.code) code = e.code
      if (typeof e.message === 'string' && e.message) message = e.message
      details = e.details
    }
  } catch {
    // Not our JSON (a proxy's HTML page, say): keep the status-based message.
  }
  if (status === 401 && !/invalid/i.test(message)) message = `Invalid key: ${message}`
  return new ApiError(status, code, message, details)
}

/** The error for a request that never got an answer. */
export function networkError(cause: unknown): ApiError {
  const why = cause instanceof Error && cause.message ? ` (${cause.message})` : ''
  return new ApiError(0, 'NETWORK_ERROR', `Could not reach the Strata service${why}`)
}

/** Anything thrown → an ApiError (unknown errors keep their message). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err
  return new ApiError(0, 'CLIENT_ERROR', err instanceof Error ? err.message : String(err))
}

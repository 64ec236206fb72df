import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { isStrataError, type StrataError } from '@strata/core'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { errorRegistries } from '../error-catalog.js'
import { serverErrors } from '../errors.js'

type ServerCode = Parameters<typeof serverErrors.create>[0]

// Fastify's own error codes → ours, in one table at the edge (trpc's getHTTPStatusCode idea).
const FASTIFY_CODES: Record<string, ServerCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'STRATA_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'STRATA_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'STRATA_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'STRATA_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'STRATA_MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_TYPE: 'STRATA_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'STRATA_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_BAD_URL: 'STRATA_BAD_REQUEST',
  FST_ERR_MAX_PARAM_LENGTH: 'STRATA_URI_TOO_LONG',
  FST_ERR_ASYNC_CONSTRAINT: 'STRATA_BAD_REQUEST',
  FST_ERR_REQ_TIMEOUT: 'STRATA_REQUEST_TIMEOUT',
}

// Any other 4xx a plugin raises, by status.
const STATUS_CODES_4XX: Record<number, ServerCode> = {
  404: 'STRATA_NOT_FOUND',
  405: 'STRATA_METHOD_NOT_ALLOWED',
  408: 'STRATA_REQUEST_TIMEOUT',
  413: 'STRATA_BODY_TOO_LARGE',
  414: 'STRATA_URI_TOO_LONG',
  415: 'STRATA_UNSUPPORTED_MEDIA_TYPE',
  429: 'STRATA_RATE_LIMITED',
  431: 'STRATA_HEADERS_TOO_LARGE',
}

// Node's HTTP parser errors ('clientError') → status and our code. Anything else is a 400.
const CLIENT_ERRORS: Record<string, ServerCode> = {
  HPE_HEADER_OVERFLOW: 'STRATA_HEADERS_TOO_LARGE',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'STRATA_BODY_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'STRATA_REQUEST_TIMEOUT',
}

/** Turns anything thrown into our error format, once, at the boundary. */
export function toStrataError(err: unknown): StrataError {
  // The cache wraps what its factory threw; the caller is answered for the work itself (a
  // database that is down is a 503 whether or not the answer was to be cached).
  if (isStrataError(err) && err.code === 'STRATA_CACHE_FACTORY_ERROR' && isStrataError(err.cause))
    return toStrataError(err.cause)
  if (isStrataError(err)) return err
  const e = err as FastifyError & { status?: number }
  if (e?.validation) {
    return serverErrors.create('STRATA_VALIDATION_FAILED', {
      message:
        `${e.validationContext ?? 'request'} ${e.message.replace(/^(body|querystring|params|headers)\/?/, '')}`.trim(),
      details: e.validation.map((v) => ({
        path: v.instancePath,
        message: v.message,
        params: v.params,
      })),
    })
  }
  const mapped = e?.code ? FASTIFY_CODES[e.code] : undefined
  if (mapped)
    return serverErrors.create(mapped, {
      message:
        mapped === 'STRATA_UNSUPPORTED_MEDIA_TYPE'
          ? 'Unsupported media type: send the body with Content-Type: application/json (POST /v1/imports also takes text/csv, application/x-ndjson, application/gzip, application/octet-stream or multipart/form-data)'
          : e.message,
      cause: err,
    })
  const status = e?.statusCode ?? e?.status
  if (err instanceof SyntaxError && status === 400)
    return serverErrors.create('STRATA_MALFORMED_JSON', {
      message: `Request body is not valid JSON: ${err.message}`,
      cause: err,
    })
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = STATUS_CODES_4XX[status] ?? 'STRATA_BAD_REQUEST'
    return serverErrors.create(code, {
      ...(code === 'STRATA_NOT_FOUND' ? {} : { message: e.message }),
      cause: err,
    })
  }
  return serverErrors.create('STRATA_INTERNAL', { cause: err })
}

// --- what a caller may see -------------------------------------------------------------------
//
// A StrataError built around a driver error (pg, Redis, a socket) may carry the driver's text in
// its message and the server's fields (detail, where, table, constraint, ...) in its details.
// Callers get the code, a message Strata wrote for them and details from an allow-list; the
// whole error, cause included, goes to the log with the request id.

/** The documented message of every code (docs/reference/errors.md). */
const DOCUMENTED = new Map<string, string>(
  errorRegistries.flatMap((r) => Object.entries(r.definitions).map(([c, d]) => [c, d.message])),
)

// Details a server-side failure (5xx) or a driver-caused error may show: what kind of failure,
// when to retry, and readiness checks (which /readyz builds from codes only).
const SAFE_DETAIL_KEYS = new Set(['kind', 'budgetMs', 'retryAfterSeconds', 'checks'])

// Fields of a PostgreSQL ErrorResponse, of Node system errors and of error objects: they name
// the schema, quote row data, or locate the server. Never in a caller's details. (`position`
// points into the caller's own SQL: it stays.)
const DRIVER_KEYS = new Set([
  'detail',
  'hint',
  'where',
  'table',
  'column',
  'constraint',
  'schema',
  'dataType',
  'internalPosition',
  'internalQuery',
  'routine',
  'file',
  'line',
  'severity',
  'stack',
  'cause',
  'address',
  'port',
  'host',
  'hostname',
  'syscall',
  'errno',
  // What @strata/pg adds to a wrapped error: the table and the statement's label.
  'collection',
  'operation',
  'label',
])

// Text that locates a server or shows code: IPv4/IPv6 addresses (with a port or not), socket
// error names, stack frames.
const LEAKY = [
  /\b\d{1,3}(?:\.\d{1,3}){3}\b/,
  /\[[0-9a-f:.]*:[0-9a-f:.]*\](?::\d+)?/i,
  /\b(?:localhost|[\w-]+(?:\.[\w-]+)+):\d{2,5}\b/,
  /\bE(?:CONNREFUSED|CONNRESET|HOSTUNREACH|NETUNREACH|NOTFOUND|AI_AGAIN|TIMEDOUT|PIPE|ADDRINUSE)\b/,
  /\n\s*at\s|\bat\s+\S+\s+\([^)]*:\d+:\d+\)/,
]

const leaky = (text: string): boolean => LEAKY.some((re) => re.test(text))

/**
 * Errors whose text is the caller's own input or Fastify's words about the request (not a
 * driver's): a JSON parse error quotes the body, FST_* messages describe the request.
 */
function isSafeCause(e: unknown): boolean {
  if (e instanceof SyntaxError) return true
  const code = (e as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('FST_')
}

/** The errors of the cause chain that are neither Strata's nor safe ones: a driver's. */
function driverCauses(err: StrataError): unknown[] {
  const seen = new Set<unknown>()
  const out: unknown[] = []
  for (let e: unknown = err.cause; e && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e)
    if (!isStrataError(e) && !isSafeCause(e)) out.push(e)
    // An AggregateError (a connection refused on every address of a host) holds the details.
    if (e instanceof AggregateError) out.push(...(e.errors as unknown[]))
  }
  return out
}

/** True when `text` repeats what one of the driver errors said. */
function quotesDriver(text: string, causes: unknown[]): boolean {
  return causes.some((c) => {
    const m = c instanceof Error ? c.message : typeof c === 'string' ? c : ''
    return m.trim().length >= 4 && text.includes(m.trim())
  })
}

const hasDriverFields = (details: unknown): boolean =>
  details !== null &&
  typeof details === 'object' &&
  !Array.isArray(details) &&
  ['detail', 'where', 'constraint', 'table', 'schema', 'severity', 'routine'].some(
    (k) => k in details,
  )

/** Details with driver fields and leaky strings removed, recursively. */
function scrub(value: unknown, depth = 0): unknown {
  if (depth > 8) return undefined
  if (typeof value === 'string') return leaky(value) ? undefined : value
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1))
  if (value === null || typeof value !== 'object') return value
  if (value instanceof Error) return undefined
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    if (DRIVER_KEYS.has(k)) continue
    const s = scrub(v, depth + 1)
    if (s !== undefined) out[k] = s
  }
  return out
}

function pickSafe(details: unknown): Record<string, unknown> | undefined {
  if (details === null || typeof details !== 'object' || Array.isArray(details)) return undefined
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(details)) {
    if (SAFE_DETAIL_KEYS.has(k)) {
      const s = scrub(v)
      if (s !== undefined) out[k] = s
    }
  }
  return Object.keys(out).length ? out : undefined
}

/**
 * What a caller sees of `err`: its code; its message when Strata wrote it for the caller, else
 * the code's documented one; details from an allow-list. A server-side failure (5xx) shows the
 * documented message and only the safe detail keys. A refusal (4xx) keeps its message unless it
 * repeats a driver's words, names an address or wraps a Postgres error, and its details minus
 * driver fields and anything naming an address.
 */
export function publicError(err: StrataError): {
  code: string
  message: string
  details?: unknown
} {
  const documented = DOCUMENTED.get(err.code) ?? STATUS_CODES[err.status] ?? 'Error'
  if (err.status >= 500) {
    const details = pickSafe(err.details)
    return details
      ? { code: err.code, message: documented, details }
      : { code: err.code, message: documented }
  }
  const own =
    err.message &&
    !leaky(err.message) &&
    !hasDriverFields(err.details) &&
    !quotesDriver(err.message, driverCauses(err))
  const message = own ? err.message : documented
  const details = err.details === undefined ? undefined : scrub(err.details)
  return details === undefined ? { code: err.code, message } : { code: err.code, message, details }
}

/** True when the caller's answer leaves something of `err` out (it must then be logged whole). */
function withheld(err: StrataError): boolean {
  return driverCauses(err).length > 0 || hasDriverFields(err.details)
}

/** Answers `err` in the envelope; the caller logs it. */
export function sendError(reply: FastifyReply, err: StrataError): FastifyReply {
  if ((err.status === 503 || err.status === 429) && !reply.hasHeader('retry-after')) {
    const retryAfter =
      (err.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds ?? 1
    void reply.header('retry-after', String(retryAfter))
  }
  // The caller can quote it; the log line of the failure carries the same id (reqId).
  void reply.header('x-request-id', String(reply.request.id))
  // The rest of an over-long or late request is not worth reading: close instead of draining.
  if (err.status === 408 || err.status === 413 || err.status === 431)
    void reply.header('connection', 'close')
  return reply
    .code(err.status)
    .type('application/json; charset=utf-8')
    .send({ error: publicError(err) })
}

// --- refusals before a route runs ------------------------------------------------------------

/**
 * Node's 'clientError' (Fastify's `clientErrorHandler`): the request could not be parsed (bad
 * request line, header overflow, bad chunking) or took too long. Writes a complete response in
 * the envelope on the raw socket when nothing was sent on it yet, then closes the connection.
 */
export function clientErrorHandler(
  this: FastifyInstance,
  err: Error & { code?: string },
  socket: Socket,
): void {
  // A reset connection has nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const code = (err.code && CLIENT_ERRORS[err.code]) || 'STRATA_BAD_REQUEST'
  // Usually a scanner or a misconfigured proxy: useful when debugging, noise otherwise.
  this.log.debug({ err, code }, 'client error')
  const response = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage
  if (socket.writable && !response?.headersSent) endWithError(socket, code)
  else socket.destroy()
}

/**
 * Writes a whole response in the envelope on a raw socket and closes it: for refusals made
 * where no Fastify reply exists.
 */
function endWithError(
  socket: Duplex,
  code: ServerCode,
  headers: Record<string, string> = {},
): void {
  const { status } = serverErrors.definitions[code]
  const body = JSON.stringify({ error: { code, message: DOCUMENTED.get(code)! } })
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('') +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  )
  // end() lets the answer reach the client before the connection goes; a client that never
  // reads it must not keep the socket.
  setTimeout(() => socket.destroy(), 2000).unref()
}

/** Answers on a Node response (no Fastify reply), in the envelope, and closes the connection. */
function sendRaw(response: ServerResponse, code: ServerCode): void {
  const { status } = serverErrors.definitions[code]
  const body = JSON.stringify({ error: { code, message: DOCUMENTED.get(code)! } })
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  })
  response.end(body)
}

/**
 * Fastify's `frameworkErrors`: a URL that does not decode, a path parameter over the length
 * limit, a failing route constraint. Same envelope as everything else.
 */
export function frameworkErrorHandler(
  err: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const strataError = toStrataError(err)
  request.log.info({ err, code: strataError.code }, 'request rejected')
  void sendError(reply, strataError)
}

// --- 404 or 405 --------------------------------------------------------------------------------

/** A route's URL pattern as a regular expression over concrete paths. */
function pathPattern(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) =>
      segment === '*'
        ? '.*'
        : segment.includes(':') || segment.includes('*')
          ? '[^/]+'
          : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('/')
  return new RegExp(`^${source}$`)
}

async function errorsPlugin(app: FastifyInstance): Promise<void> {
  // Two refusals Node makes on its own when nobody listens, outside the envelope: an `Expect`
  // other than 100-continue (417) and CONNECT (the socket was just closed). No route takes either.
  app.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    app.log.debug({ expect: request.headers.expect }, 'unsupported Expect header')
    sendRaw(response, 'STRATA_EXPECTATION_FAILED')
  })
  app.server.on('connect', (_request: IncomingMessage, socket: Duplex) => {
    endWithError(socket, 'STRATA_METHOD_NOT_ALLOWED')
  })

  // Every route, to tell "no such path" (404) from "not with this method" (405).
  const routes: { pattern: RegExp; methods: string[] }[] = []
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat().map((m) => m.toUpperCase())
    routes.push({ pattern: pathPattern(route.url), methods })
  })

  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const strataError = toStrataError(err)
    if (strataError.status >= 500 && strataError.code !== 'STRATA_SHUTTING_DOWN') {
      request.log.error({ err, code: strataError.code }, 'request failed')
    } else if (withheld(strataError)) {
      // A refusal built around a driver error: its details stay here, not with the caller.
      request.log.info({ err, code: strataError.code }, 'request rejected')
    } else {
      // `reason`, not `msg`: pino writes the message under `msg`, and a second `msg` key in one
      // JSON line is lost by every parser that keeps the last.
      request.log.info({ code: strataError.code, reason: strataError.message }, 'request rejected')
    }
    return sendError(reply, strataError)
  })
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!
    const allowed = new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => r.methods))
    if (allowed.size > 0 && !allowed.has(request.method)) {
      void reply.header('allow', [...allowed].sort().join(', '))
      return sendError(
        reply,
        serverErrors.create('STRATA_METHOD_NOT_ALLOWED', {
          message: `${request.method} is not allowed on ${path}`,
        }),
      )
    }
    return sendError(
      reply,
      serverErrors.create('STRATA_NOT_FOUND', { message: `No route ${request.method} ${path}` }),
    )
  })
}

export default fp(errorsPlugin, { name: 'strata-errors' })

import { isStrataError, type StrataError } from '@strata/core'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { serverErrors } from '../errors.js'

// Fastify's own error codes → ours, in one table at the edge (trpc's getHTTPStatusCode idea).
const FASTIFY_CODES: Record<string, Parameters<typeof serverErrors.create>[0]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'STRATA_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'STRATA_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'STRATA_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'STRATA_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'STRATA_MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_TYPE: 'STRATA_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'STRATA_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_BAD_URL: 'STRATA_BAD_REQUEST',
  FST_ERR_ASYNC_CONSTRAINT: 'STRATA_BAD_REQUEST',
  FST_ERR_REQ_TIMEOUT: 'STRATA_REQUEST_TIMEOUT',
}

/** Turns anything thrown into our error format, once, at the boundary. */
export function toStrataError(err: unknown): StrataError {
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
  if (mapped) return serverErrors.create(mapped, { message: e.message, cause: err })
  const status = e?.statusCode ?? e?.status
  if (err instanceof SyntaxError && status === 400)
    return serverErrors.create('STRATA_MALFORMED_JSON', {
      message: `Request body is not valid JSON: ${err.message}`,
      cause: err,
    })
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 404) return serverErrors.create('STRATA_NOT_FOUND', { cause: err })
    if (status === 429)
      return serverErrors.create('STRATA_RATE_LIMITED', { message: e.message, cause: err })
    return serverErrors.create('STRATA_BAD_REQUEST', { message: e.message, cause: err })
  }
  return serverErrors.create('STRATA_INTERNAL', { cause: err })
}

export function sendError(reply: FastifyReply, err: StrataError): FastifyReply {
  if ((err.status === 503 || err.status === 429) && !reply.hasHeader('retry-after')) {
    const retryAfter =
      (err.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds ?? 1
    void reply.header('retry-after', String(retryAfter))
  }
  return reply
    .code(err.status)
    .type('application/json; charset=utf-8')
    .send({ error: err.toJSON() })
}

async function errorsPlugin(app: FastifyInstance): Promise<void> {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const strataError = toStrataError(err)
    if (strataError.status >= 500 && strataError.code !== 'STRATA_SHUTTING_DOWN') {
      request.log.error({ err, code: strataError.code }, 'request failed')
    } else {
      request.log.info({ code: strataError.code, msg: strataError.message }, 'request rejected')
    }
    return sendError(reply, strataError)
  })
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      serverErrors.create('STRATA_NOT_FOUND', {
        message: `No route ${request.method} ${request.url.split('?')[0]}`,
      }),
    ),
  )
}

export default fp(errorsPlugin, { name: 'strata-errors' })

import { promisify } from 'node:util'
import { gunzip, inflate } from 'node:zlib'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { serverErrors } from '../errors.js'

const gunzipAsync = promisify(gunzip)
const inflateAsync = promisify(inflate)
const utf8 = new TextDecoder('utf-8', { fatal: true })

// Ingestion bodies are JSON whatever the Content-Type claims: Segment's browser library sends
// text/plain (sendBeacon), RudderStack's node SDK labels gzip as x-www-form-urlencoded.
const JSON_TYPES = ['application/json', 'text/plain', 'application/x-www-form-urlencoded']

/** Decompresses by Content-Encoding (gzip/deflate), capped at `limit` decompressed bytes. */
async function decode(request: FastifyRequest, raw: Buffer, limit: number): Promise<Buffer> {
  const encoding = String(request.headers['content-encoding'] ?? 'identity')
    .trim()
    .toLowerCase()
  if (encoding === 'identity' || encoding === '') return raw
  if (encoding !== 'gzip' && encoding !== 'x-gzip' && encoding !== 'deflate') {
    throw serverErrors.create('STRATA_UNSUPPORTED_ENCODING', {
      message: `Content-Encoding ${JSON.stringify(encoding)} is not supported; use gzip, deflate or identity`,
    })
  }
  try {
    // maxOutputLength stops a gzip bomb at the limit instead of inflating it in memory.
    const opts = { maxOutputLength: limit + 1 }
    const out =
      encoding === 'deflate' ? await inflateAsync(raw, opts) : await gunzipAsync(raw, opts)
    if (out.length > limit) throw new RangeError('too large')
    return out
  } catch (err) {
    if (err instanceof RangeError || (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
      throw serverErrors.create('STRATA_BODY_TOO_LARGE', {
        message: `Request body is larger than ${limit} bytes after decompression`,
      })
    throw serverErrors.create('STRATA_MALFORMED_JSON', {
      message: `Request body is not valid ${encoding} data`,
    })
  }
}

/**
 * The ingestion routes' body parser, for the scope it is registered in: JSON under any of
 * JSON_TYPES, gzip or deflate encoded, strict UTF-8, limited to the app's body limit once
 * decompressed.
 */
async function ingestBody(app: FastifyInstance): Promise<void> {
  const bodyLimit = app.initialConfig.bodyLimit ?? 512_000
  app.removeContentTypeParser(['application/json', 'text/plain'])
  app.addContentTypeParser(
    JSON_TYPES,
    { parseAs: 'buffer' },
    async (request: FastifyRequest, body: Buffer | string) => {
      const raw = typeof body === 'string' ? Buffer.from(body) : body
      const decoded = await decode(request, raw, bodyLimit)
      let text: string
      try {
        text = utf8.decode(decoded)
      } catch {
        throw serverErrors.create('STRATA_MALFORMED_JSON', {
          message: 'Request body is not valid UTF-8',
        })
      }
      try {
        return JSON.parse(text) as unknown
      } catch (err) {
        throw serverErrors.create('STRATA_MALFORMED_JSON', {
          message: `Request body is not valid JSON: ${(err as Error).message}`,
        })
      }
    },
  )
}

export default fp(ingestBody, { name: 'strata-ingest-body' })

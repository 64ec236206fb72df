import { channel } from 'node:diagnostics_channel'
import { pipeline, Transform, type TransformCallback } from 'node:stream'
import { promisify } from 'node:util'
import { gunzip, inflate } from 'node:zlib'
import { eventsErrors } from '@strata/events'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { serverErrors } from '../errors.js'

const gunzipAsync = promisify(gunzip)
const inflateAsync = promisify(inflate)
const utf8 = new TextDecoder('utf-8', { fatal: true })

// Ingestion bodies are JSON whatever the Content-Type claims: Segment's browser library sends
// text/plain (sendBeacon), RudderStack's node SDK labels gzip as x-www-form-urlencoded.
const JSON_TYPES = ['application/json', 'text/plain', 'application/x-www-form-urlencoded']

export const INGEST_BODY_DEFAULTS = Object.freeze({
  /**
   * Bytes of a body read before its sender is known (Segment's body `writeKey`, no credential
   * header), both as sent and once decompressed. A Segment browser batch is a few KB; an SDK
   * that sends more can authenticate with a header. 64 KiB.
   */
  unauthenticatedLimit: 65_536,
  /**
   * Nesting of arrays and objects in any ingestion body. An event itself may nest 32 (the
   * validator rejects a deeper one alone, its neighbours kept); past this bound the whole body
   * is refused before JSON.parse.
   */
  maxDepth: 128,
  /**
   * Decompressed bytes of ingestion bodies parsed and not yet answered, per process. Requests
   * wait for their COMMIT with their events in memory; past this bound new ones get 503 +
   * Retry-After instead of growing the heap without limit. 128 MiB.
   */
  maxInFlightBytes: 128 * 1024 * 1024,
})

export type IngestBodyOptions = typeof INGEST_BODY_DEFAULTS

/** What the parser did with one body, on the `strata.ingest.body` diagnostics channel. */
export interface IngestBodyMessage {
  /** Bytes as received, and once decompressed. */
  bytes: number
  decodedBytes: number
  /** Whether the sender was already authenticated (header credentials). */
  authenticated: boolean
  /** Whether JSON.parse ran (false: refused before, e.g. by the nesting pre-scan). */
  parsed: boolean
  /** Event-loop time spent on it (decompression runs in the thread pool), ms. */
  ms: number
}

export const ingestBodyChannel = channel('strata.ingest.body')

/**
 * True when the JSON text nests arrays/objects deeper than `maxDepth`: one linear pass over the
 * bytes, skipping strings (structural characters are ASCII, so UTF-8 needs no decoding). For
 * any prefix JSON.parse accepts, its depth is the one counted here, so a body that passes
 * cannot make the parser go deeper.
 */
export function nestsDeeperThan(bytes: Uint8Array, maxDepth: number): boolean {
  let depth = 0
  const n = bytes.length
  for (let i = 0; i < n; i++) {
    const c = bytes[i]!
    if (c === 0x22) {
      // A string: jump to its closing quote, past escaped characters.
      for (i++; i < n; i++) {
        const s = bytes[i]!
        if (s === 0x5c) i++
        else if (s === 0x22) break
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

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
      throw tooLarge(`Request body is larger than ${limit} bytes after decompression`)
    throw serverErrors.create('STRATA_MALFORMED_JSON', {
      message: `Request body is not valid ${encoding} data`,
    })
  }
}

function tooLarge(message: string) {
  return serverErrors.create('STRATA_BODY_TOO_LARGE', { message })
}

const unauthenticatedTooLarge = (limit: number) =>
  tooLarge(
    `A body authenticated by its writeKey may have at most ${limit} bytes; send larger batches with an Authorization header`,
  )

/** Errors once more than `limit` bytes went through (a chunked body has no Content-Length). */
class ByteLimit extends Transform {
  receivedEncodedLength = 0
  readonly #limit: number

  constructor(limit: number) {
    super()
    this.#limit = limit
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.receivedEncodedLength += chunk.length
    if (this.receivedEncodedLength > this.#limit) done(unauthenticatedTooLarge(this.#limit))
    else done(null, chunk)
  }
}

/**
 * The ingestion routes' body parser, for the scope it is registered in: JSON under any of
 * JSON_TYPES, gzip or deflate encoded, strict UTF-8, limited to the app's body limit once
 * decompressed, nesting at most `maxDepth` (checked by a linear pre-scan before JSON.parse).
 * A body read before its sender is known (no credential header: Segment's body `writeKey`)
 * is held to `unauthenticatedLimit` bytes, as sent and decompressed.
 */
async function ingestBody(
  app: FastifyInstance,
  opts: Partial<IngestBodyOptions> = {},
): Promise<void> {
  const bodyLimit = app.initialConfig.bodyLimit ?? 512_000
  const { unauthenticatedLimit, maxDepth, maxInFlightBytes } = { ...INGEST_BODY_DEFAULTS, ...opts }
  let inFlightBytes = 0
  const held = new WeakMap<FastifyRequest, number>()
  const release = async (request: FastifyRequest): Promise<void> => {
    const n = held.get(request)
    if (n === undefined) return
    held.delete(request)
    inFlightBytes -= n
  }
  app.addHook('onResponse', release)
  app.addHook('onRequestAbort', release)

  // Authentication ran at onRequest; a request still without a principal here is waiting for
  // its body's writeKey.
  app.addHook(
    'preParsing',
    async (request: FastifyRequest, reply: FastifyReply, payload: NodeJS.ReadableStream) => {
      if (request.principal) return payload
      if (Number(request.headers['content-length']) > unauthenticatedLimit) {
        void reply.header('connection', 'close')
        throw unauthenticatedTooLarge(unauthenticatedLimit)
      }
      // pipeline, not pipe: a client that hangs up mid-body must end the parser's read too.
      return pipeline(payload, new ByteLimit(unauthenticatedLimit), () => {})
    },
  )

  app.removeContentTypeParser(['application/json', 'text/plain'])
  app.addContentTypeParser(
    JSON_TYPES,
    { parseAs: 'buffer' },
    async (request: FastifyRequest, body: Buffer | string) => {
      const raw = typeof body === 'string' ? Buffer.from(body) : body
      const authenticated = request.principal !== undefined
      const decoded = await decode(request, raw, authenticated ? bodyLimit : unauthenticatedLimit)
      if (inFlightBytes + decoded.length > maxInFlightBytes && inFlightBytes > 0)
        throw eventsErrors.create('STRATA_INGEST_OVERLOADED', {
          message: 'Too many ingestion bodies are waiting for their commit; retry shortly',
          details: { inFlightBytes, maxInFlightBytes, retryAfterSeconds: 1 },
        })
      inFlightBytes += decoded.length
      held.set(request, decoded.length)
      const started = performance.now()
      const report = (parsed: boolean) => {
        if (ingestBodyChannel.hasSubscribers)
          ingestBodyChannel.publish({
            bytes: raw.length,
            decodedBytes: decoded.length,
            authenticated,
            parsed,
            ms: performance.now() - started,
          } satisfies IngestBodyMessage)
      }
      if (nestsDeeperThan(decoded, maxDepth)) {
        report(false)
        throw eventsErrors.create('STRATA_EVENT_TOO_DEEP', {
          message: `Request body nests arrays/objects deeper than ${maxDepth} levels`,
        })
      }
      let text: string
      try {
        text = utf8.decode(decoded)
      } catch {
        report(false)
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
      } finally {
        report(true)
      }
    },
  )
}

export default fp(ingestBody, { name: 'strata-ingest-body' })

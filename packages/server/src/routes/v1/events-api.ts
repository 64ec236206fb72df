import { promisify } from 'node:util'
import { gunzip, inflate } from 'node:zlib'
import rateLimit from '@fastify/rate-limit'
import {
  EventValidator,
  GroupCommitWriter,
  ProjectStore,
  SessionStore,
  type EventValidatorOptions,
  type GroupCommitWriterOptions,
  type SessionCache,
  type SessionStoreOptions,
} from '@strata/events'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { serverErrors } from '../../errors.js'
import type { AuthOptions } from '../../plugins/auth.js'
import ingestRoutes from './ingest.js'
import projectRoutes from './projects.js'
import segmentRoutes from './segment.js'
import sessionRoutes from './sessions.js'

/** The services behind the events routes, built once per app. */
export interface EventsServices {
  projects: ProjectStore
  validator: EventValidator
  writer: GroupCommitWriter
  sessions: SessionStore
  auth: AuthOptions
}

export interface EventsApiOptions {
  validator?: EventValidatorOptions
  writer?: GroupCommitWriterOptions
  sessions?: SessionStoreOptions
  /** Requests per project per window; `nameSpace` prefixes the counters' keys. @defaultValue 20000 per '1s' */
  rateLimit?: { max: number; timeWindow: string | number; nameSpace?: string } | false
  /** Shared rate-limit counters across instances (an ioredis client); default `app.redis` when decorated. */
  redis?: unknown
  /** Test seam: receives the services once built. */
  onServices?: (services: EventsServices) => void
}

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
 * Events, sessions, projects and keys (issue 4). Everything here is encapsulated: the JSON
 * parsers, auth hooks and rate limit apply to these routes only.
 */
export default async function eventsApi(
  app: FastifyInstance,
  options: EventsApiOptions = {},
): Promise<void> {
  const projects = new ProjectStore(app.db)
  const registry = new Registry()
  const flushSeconds = new Histogram({
    name: 'strata_ingest_flush_duration_seconds',
    help: 'Group-commit flush transactions, from start to COMMIT (retries included)',
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  const flushRows = new Counter({
    name: 'strata_ingest_flushed_rows_total',
    help: 'Rows handled by committed flushes (inserted, duplicate or rejected)',
    registers: [registry],
  })
  const writer = new GroupCommitWriter(app.db, {
    logger: app.log,
    onFlush: (rows, ms) => {
      flushSeconds.observe(ms / 1000)
      flushRows.inc(rows)
    },
    ...options.writer,
  })
  new Gauge({
    name: 'strata_ingest_writer',
    help: 'Group-commit writer state and totals (see the stat label)',
    labelNames: ['stat'],
    registers: [registry],
    collect() {
      for (const [stat, value] of Object.entries(writer.stats())) this.set({ stat }, value)
    },
  })
  // The app's /metrics reads every registry in app.metricsRegistries (absent in bare test apps).
  const registries = (app as unknown as { metricsRegistries?: Registry[] }).metricsRegistries
  registries?.push(registry)
  // The app's cache (@strata/cache: with Redis, its bus makes a logout visible on every
  // instance at once), in its own namespace; without one the store keeps a per-process LRU.
  const appCache = (
    app as unknown as { cache?: SessionCache & { namespace?(n: string): SessionCache } }
  ).cache
  const maybeCache = appCache?.namespace ? appCache.namespace('sessions') : appCache
  const sessions = new SessionStore(app.db, {
    logger: app.log,
    ...(maybeCache ? { cache: maybeCache } : {}),
    ...options.sessions,
  })
  const services: EventsServices = {
    projects,
    validator: new EventValidator(options.validator),
    writer,
    sessions,
    auth: { store: projects, adminToken: app.config.adminToken },
  }
  options.onServices?.(services)

  app.addHook('onReady', async () => {
    // Not fatal: partitions are also created on demand, and the schema may not be migrated yet.
    await writer
      .start()
      .catch((err: unknown) => app.log.warn({ err }, 'event partition maintenance failed'))
    sessions.start()
  })
  // Drains queued events: requests in flight still get their 202 after COMMIT.
  app.addHook('onClose', async () => {
    const i = registries?.indexOf(registry) ?? -1
    if (i >= 0) registries!.splice(i, 1)
    await writer.close()
    await sessions.close()
  })

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

  if (options.rateLimit !== false) {
    const rl = options.rateLimit ?? { max: 20_000, timeWindow: '1s' }
    const redis = options.redis ?? (app as unknown as { redis?: unknown }).redis
    await app.register(rateLimit, {
      global: true,
      max: rl.max,
      timeWindow: rl.timeWindow,
      // After auth (preValidation), so the limit is per project, not per client address.
      hook: 'preHandler',
      keyGenerator: (request) => {
        const p = request.principal
        return p?.type === 'key' ? `project:${p.projectId}` : `ip:${request.ip}`
      },
      nameSpace: rl.nameSpace ?? 'strata-rl-',
      // Counters shared by every instance when a Redis client is given (or decorated as app.redis);
      // if Redis fails, requests are let through rather than refused (skipOnError).
      ...(redis ? { redis, skipOnError: true } : {}),
      errorResponseBuilder: (_request, context) =>
        serverErrors.create('STRATA_RATE_LIMITED', {
          message: `Rate limit of ${context.max} requests per ${context.after} exceeded for this project`,
          details: { retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)) },
        }),
    })
  }

  await app.register(ingestRoutes, { services })
  await app.register(segmentRoutes, { services })
  await app.register(sessionRoutes, { services })
  await app.register(projectRoutes, { services })
}

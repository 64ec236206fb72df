import { createHash } from 'node:crypto'
import {
  AnalyticsQueries,
  analyticsErrors,
  eventsErrors,
  parseCursor,
  parseFlag,
  parseGroupBy,
  parseLimit,
  parseRange,
  parseSeries,
  ProjectStore,
  type AnalyticsOptions,
  type RecentLoginsFilter,
} from '@strata/events'
import { createDatabase, type Database } from '@strata/pg'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { requirePrincipal } from '../../plugins/auth.js'

export interface AnalyticsRoutesOptions {
  /** Range/limit bounds (max range, max buckets, max limit). */
  analytics?: AnalyticsOptions
  /** Database the queries read; default a pool on DATABASE_READ_URL when set, else `app.db`. */
  readDb?: Database
  /** Clock (tests). @defaultValue Date.now */
  now?: () => number
  /**
   * TTL of answers whose range reaches into the current minute (still changing). Historical
   * answers use CACHE_TTL_ANALYTICS (10 min), lists CACHE_TTL_RECENT (30 s). @defaultValue 5000
   */
  liveTtlMs?: number
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const MINUTE = 60_000

interface Cached {
  body: string
  etag: string
}

type Query = Record<string, unknown>

/** An optional text filter: absent or empty → undefined; not a string or too long → 400. */
function text(name: string, value: unknown, max: number): string | undefined {
  if (value === undefined || value === '') return undefined
  if (typeof value !== 'string' || value.length > max)
    throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_PARAMETER', {
      message: `${name} must be a string of at most ${max} characters`,
      details: { parameter: name },
    })
  return value
}

/**
 * Analytics routes: the project's admin key, or the operator token with `?project=`. Answers
 * are cached through `app.cache` (namespace `analytics`, keys = project + endpoint + normalised
 * parameters) and carry an ETag; `If-None-Match` gets a 304.
 */
export default async function analyticsRoutes(
  app: FastifyInstance,
  opts: AnalyticsRoutesOptions = {},
): Promise<void> {
  let readDb = opts.readDb ?? app.db
  if (!opts.readDb && app.config.databaseReadUrl) {
    const replica = await createDatabase({ url: app.config.databaseReadUrl })
    app.addHook('onClose', () => replica.close())
    readDb = replica
  }
  const queries = new AnalyticsQueries(readDb, opts.analytics)
  const o = queries.options
  const now = opts.now ?? Date.now
  const store = new ProjectStore(app.db)
  const auth = requirePrincipal(
    { store, adminToken: app.config.adminToken },
    { kinds: ['admin'], operator: true },
  )
  const cache = app.cache.namespace('analytics')
  const ttl = {
    analytics: app.config.cacheTtls.analytics ?? 10 * MINUTE,
    recent: app.config.cacheTtls.recent ?? 30_000,
    live: opts.liveTtlMs ?? 5000,
  }
  // A query's own statement timeout bounds it; the cache must not abandon it at its 1 s default.
  const timeouts = { hard: o.statementTimeoutMs + 1000 }
  const knownProjects = new Map<string, number>()

  async function projectFor(request: FastifyRequest): Promise<string> {
    const p = request.principal!
    const asked = (request.query as Query).project
    if (asked !== undefined && (typeof asked !== 'string' || !UUID.test(asked)))
      throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_PARAMETER', {
        message: 'project must be a project id (uuid)',
        details: { parameter: 'project' },
      })
    if (p.type === 'key') {
      if (asked !== undefined && asked.toLowerCase() !== p.projectId)
        throw eventsErrors.create('STRATA_AUTH_FORBIDDEN', {
          message: "A project's admin key reads only that project",
        })
      return p.projectId
    }
    if (asked === undefined)
      throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_PARAMETER', {
        message: 'The operator token must name a project: ?project=<id>',
        details: { parameter: 'project' },
      })
    const id = asked.toLowerCase()
    if ((knownProjects.get(id) ?? 0) < now()) {
      if (!(await store.getProject(id)))
        throw eventsErrors.create('STRATA_PROJECT_NOT_FOUND', {
          message: `Project ${id} not found`,
        })
      knownProjects.set(id, now() + MINUTE)
    }
    return id
  }

  /** Answers from the cache (or computes), with ETag / Cache-Control / 304. */
  async function respond(
    request: FastifyRequest,
    reply: FastifyReply,
    key: unknown[],
    ttlMs: number,
    compute: () => Promise<unknown>,
  ): Promise<string | undefined> {
    const digest = createHash('sha256').update(JSON.stringify(key)).digest('base64url')
    const entry = await cache.getOrSet<Cached>(
      `${String(key[0])}:${String(key[1])}:${digest}`,
      async () => {
        const body = JSON.stringify(await compute())
        const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`
        return { body, etag }
      },
      { ttl: ttlMs, timeouts },
    )
    reply.header('etag', entry.etag)
    reply.header('cache-control', `private, max-age=${Math.floor(ttlMs / 1000)}`)
    reply.header('vary', 'Authorization')
    const inm = request.headers['if-none-match']
    if (inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === entry.etag)) {
      reply.code(304)
      return undefined
    }
    reply.type('application/json; charset=utf-8')
    return entry.body
  }

  // An absent `to` is the next whole minute, so default ranges share cache keys for a minute.
  const withDefaultTo = (q: Query, t: number): Query =>
    q.to === undefined || q.to === ''
      ? { ...q, to: new Date(Math.ceil((t + 1) / MINUTE) * MINUTE).toISOString() }
      : q
  const rangeTtl = (to: number, t: number) => (to > t - MINUTE ? ttl.live : ttl.analytics)

  app.get('/v1/analytics/logins', { preValidation: auth }, async (request, reply) => {
    const projectId = await projectFor(request)
    const t = now()
    const q = request.query as Query
    const p = parseSeries(withDefaultTo(q, t), o, t)
    const uniques = parseFlag('uniques', q.uniques, true)
    return respond(request, reply, [projectId, 'logins', p, uniques], rangeTtl(p.to, t), () =>
      queries.logins(projectId, p, { uniques }),
    )
  })

  app.get('/v1/analytics/activity', { preValidation: auth }, async (request, reply) => {
    const projectId = await projectFor(request)
    const q = request.query as Query
    const t = now()
    const p = parseSeries(withDefaultTo(q, t), o, t)
    const groupBy = parseGroupBy(q.groupBy)
    return respond(request, reply, [projectId, 'activity', p, groupBy], rangeTtl(p.to, t), () =>
      queries.activity(projectId, p, groupBy),
    )
  })

  app.get('/v1/analytics/active-users', { preValidation: auth }, async (request, reply) => {
    const projectId = await projectFor(request)
    const t = now()
    const p = parseRange(withDefaultTo(request.query as Query, t), o, t)
    return respond(request, reply, [projectId, 'active-users', p], rangeTtl(p.to, t), () =>
      queries.activeUsers(projectId, p),
    )
  })

  app.get('/v1/analytics/sessions', { preValidation: auth }, async (request, reply) => {
    const projectId = await projectFor(request)
    const t = now()
    const p = parseRange(withDefaultTo(request.query as Query, t), o, t)
    // `active` is a now-figure: the short list TTL, whatever the range.
    return respond(
      request,
      reply,
      [projectId, 'sessions', p],
      Math.min(ttl.recent, rangeTtl(p.to, t)),
      () => queries.sessions(projectId, p, t),
    )
  })

  app.get('/v1/analytics/recent-logins', { preValidation: auth }, async (request, reply) => {
    const projectId = await projectFor(request)
    const q = request.query as Query
    const limit = parseLimit(q.limit, o)
    const cursor = parseCursor(q.cursor)
    const filter: RecentLoginsFilter = {}
    const method = text('method', q.method, 64)
    if (method !== undefined) filter.method = method
    if (q.success !== undefined && q.success !== '')
      filter.success = parseFlag('success', q.success, true)
    const userId = text('userId', q.userId, 255)
    if (userId !== undefined) filter.userId = userId
    return respond(
      request,
      reply,
      [projectId, 'recent-logins', limit, cursor, filter.method, filter.success, filter.userId],
      ttl.recent,
      () => queries.recentLogins(projectId, limit, cursor, filter),
    )
  })

  app.get<{ Params: { id: string } }>(
    '/v1/analytics/users/:id/activity',
    { preValidation: auth },
    async (request, reply) => {
      const projectId = await projectFor(request)
      const q = request.query as Query
      const userId = request.params.id
      if (!userId || userId.length > 255)
        throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_PARAMETER', {
          message: 'user id must be 1-255 characters',
          details: { parameter: 'id' },
        })
      const limit = parseLimit(q.limit, o)
      const cursor = parseCursor(q.cursor)
      return respond(
        request,
        reply,
        [projectId, 'user-activity', userId, limit, cursor],
        ttl.recent,
        () => queries.userActivity(projectId, userId, limit, cursor),
      )
    },
  )
}

import {
  analyticsErrors,
  eventsErrors,
  parseCursor,
  parseFlag,
  parseGroupBy,
  parseLimit,
  parseRange,
  parseSeries,
  type AnalyticsQueries,
  type RecentLoginsFilter,
} from '@strata/events'
import { pgTextProblem } from '@strata/core'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AnalyticsService } from '../../analytics/analytics-service.js'
import { checkRequestText } from '../../http/params.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const MINUTE = 60_000

type Query = Record<string, unknown>

/**
 * An optional text filter: absent or empty → undefined; not a string, too long, or text
 * PostgreSQL refuses (NUL, lone surrogate) → 400 naming the parameter.
 */
function text(name: string, value: unknown, max: number): string | undefined {
  if (value === undefined || value === '') return undefined
  if (typeof value !== 'string' || value.length > max)
    throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_PARAMETER', {
      message: `${name} must be a string of at most ${max} characters`,
      details: { parameter: name },
    })
  const problem = pgTextProblem(value)
  if (problem)
    throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_PARAMETER', {
      message: `${name} ${problem}`,
      details: { parameter: name },
    })
  return value
}

/** The project a request reads: its admin key's, or the operator's `?project=`. */
async function projectFor(request: FastifyRequest, analytics: AnalyticsService): Promise<string> {
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
  if (!(await analytics.projectExists(id)))
    throw eventsErrors.create('STRATA_PROJECT_NOT_FOUND', { message: `Project ${id} not found` })
  return id
}

/** Sends a cached answer with ETag / Cache-Control, or a 304 for a matching If-None-Match. */
async function respond(
  analytics: AnalyticsService,
  request: FastifyRequest,
  reply: FastifyReply,
  key: unknown[],
  ttlMs: number,
  compute: (queries: AnalyticsQueries) => Promise<unknown>,
): Promise<string | undefined> {
  const entry = await analytics.cached(key, ttlMs, compute)
  // Where the answer's data was read; the JSON shapes stay as they are.
  reply.header('x-strata-read-from', entry.readFrom ?? 'primary')
  if (entry.replicaLagSeconds != null)
    reply.header('x-strata-replica-lag', String(entry.replicaLagSeconds))
  reply.header('etag', entry.etag)
  reply.header('cache-control', `private, max-age=${Math.floor((entry.ttlMs ?? ttlMs) / 1000)}`)
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
function withDefaultTo(q: Query, t: number): Query {
  return q.to === undefined || q.to === ''
    ? { ...q, to: new Date(Math.ceil((t + 1) / MINUTE) * MINUTE).toISOString() }
    : q
}

/**
 * Analytics routes: the project's admin key, or the operator token with `?project=`. Answers
 * are cached (see AnalyticsService) and carry an ETag; `If-None-Match` gets a 304.
 */
export default async function analyticsRoutes(app: FastifyInstance): Promise<void> {
  const a = app.services.analytics
  const auth = app.requirePrincipal({ kinds: ['admin'], operator: true })
  const o = a.options
  const route = { preValidation: auth }
  // Every query value and path parameter is text PostgreSQL takes before anything reads it.
  app.addHook('onRequest', checkRequestText)

  app.get('/v1/analytics/logins', route, async (request, reply) => {
    const projectId = await projectFor(request, a)
    const t = a.now()
    const q = request.query as Query
    const p = parseSeries(withDefaultTo(q, t), o, t)
    const uniques = parseFlag('uniques', q.uniques, true)
    return respond(
      a,
      request,
      reply,
      [projectId, 'logins', p, uniques],
      a.rangeTtl(p.to, t),
      (queries) => queries.logins(projectId, p, { uniques }),
    )
  })

  app.get('/v1/analytics/activity', route, async (request, reply) => {
    const projectId = await projectFor(request, a)
    const q = request.query as Query
    const t = a.now()
    const p = parseSeries(withDefaultTo(q, t), o, t)
    const groupBy = parseGroupBy(q.groupBy)
    const key = [projectId, 'activity', p, groupBy]
    return respond(a, request, reply, key, a.rangeTtl(p.to, t), (queries) =>
      queries.activity(projectId, p, groupBy),
    )
  })

  app.get('/v1/analytics/active-users', route, async (request, reply) => {
    const projectId = await projectFor(request, a)
    const t = a.now()
    const p = parseRange(withDefaultTo(request.query as Query, t), o, t)
    return respond(
      a,
      request,
      reply,
      [projectId, 'active-users', p],
      a.rangeTtl(p.to, t),
      (queries) => queries.activeUsers(projectId, p),
    )
  })

  app.get('/v1/analytics/sessions', route, async (request, reply) => {
    const projectId = await projectFor(request, a)
    const t = a.now()
    const p = parseRange(withDefaultTo(request.query as Query, t), o, t)
    // `active` is a now-figure: the short list TTL, whatever the range.
    const ttl = Math.min(a.ttl.recent, a.rangeTtl(p.to, t))
    return respond(a, request, reply, [projectId, 'sessions', p], ttl, (queries) =>
      queries.sessions(projectId, p, t),
    )
  })

  app.get('/v1/analytics/recent-logins', route, async (request, reply) => {
    const projectId = await projectFor(request, a)
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
    const key = [
      projectId,
      'recent-logins',
      limit,
      cursor,
      filter.method,
      filter.success,
      filter.userId,
    ]
    return respond(a, request, reply, key, a.ttl.recent, (queries) =>
      queries.recentLogins(projectId, limit, cursor, filter),
    )
  })

  app.get<{ Params: { id: string } }>(
    '/v1/analytics/users/:id/activity',
    route,
    async (request, reply) => {
      const projectId = await projectFor(request, a)
      const q = request.query as Query
      const userId = text('id', request.params.id, 255)
      if (userId === undefined)
        throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_PARAMETER', {
          message: 'user id must be 1-255 characters',
          details: { parameter: 'id' },
        })
      const limit = parseLimit(q.limit, o)
      const cursor = parseCursor(q.cursor)
      const key = [projectId, 'user-activity', userId, limit, cursor]
      return respond(a, request, reply, key, a.ttl.recent, (queries) =>
        queries.userActivity(projectId, userId, limit, cursor),
      )
    },
  )
}

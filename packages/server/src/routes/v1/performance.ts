import { parseDuration } from '@strata/core'
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { invalid, parseWith } from '../../http/params.js'

const limit = (max: number) => z.coerce.number().int().min(1).max(max)
const ms = z.coerce.number().int().min(0).max(86_400_000)

const QueriesQuery = z.strictObject({
  orderBy: z.enum(['total', 'mean', 'count', 'p95']).optional(),
  limit: limit(200).optional(),
})
const LimitQuery = z.strictObject({ limit: limit(1000).optional() })
const SuggestionsQuery = z.strictObject({ method: z.enum(['auto', 'heuristic']).optional() })
const LeaksQuery = z.strictObject({ minHeldMs: ms.optional() })
const LongRunningQuery = z.strictObject({ minDurationMs: ms.optional() })
const HistoryQuery = z.strictObject({ duration: z.string().min(1).optional() })
const PlanBody = z.strictObject({
  sql: z.string().min(1).max(100_000),
  params: z.array(z.unknown()).max(1000).optional(),
  analyze: z.boolean().optional(),
})
const WarmupBody = z.strictObject({
  warmer: z.string().min(1).max(200).optional(),
  concurrency: z.number().int().min(1).max(64).optional(),
})
const ClearBody = z.strictObject({
  namespace: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[\w.:-]+$/, { message: 'must be letters, digits, _ . : -' }),
})
const TerminateBody = z.strictObject({ action: z.enum(['cancel', 'terminate']).optional() })

/** `?duration=` of /history: 1 ms to 14 days. */
function historyDuration(value: string | undefined): number {
  let durationMs: number
  try {
    durationMs = parseDuration(value ?? '1h', 'duration')
  } catch {
    invalid('duration must be a duration such as 15m, 6h or 7d')
  }
  if (durationMs <= 0 || durationMs > 14 * 86_400_000)
    invalid('duration must be between 1 ms and 14 days')
  return durationMs
}

/**
 * `/v1/performance/*` (operator token only: database-wide data). Process, alert, history and
 * warm-up state live in the PerformanceService; the database parts come from @strata/pg.
 */
export default async function performanceRoutes(app: FastifyInstance): Promise<void> {
  const { db, performance: perf } = app.services
  const auth = app.requirePrincipal({ operator: true })

  const base = '/v1/performance'
  const route = { preValidation: auth }

  app.get(base, route, async () => perf.overview())

  // Every live instance (Redis registry) with its snapshot and age, and the cluster summed up.
  app.get(`${base}/instances`, route, async () => perf.instancesReport())

  app.get(`${base}/health`, route, async () => (await perf.evaluate()).health)

  app.get(`${base}/queries`, route, async (req) => {
    const q = parseWith(QueriesQuery, req.query, 'query string')
    const m = db.monitor.stats({ top: 10, recent: 20 })
    const orderBy = q.orderBy ?? 'total'
    return {
      since: m.since,
      statements: db.monitor.statements({ orderBy, limit: q.limit ?? 20 }),
      patterns: { byTable: m.byTable, byType: m.byType, byLabel: m.byLabel },
      recent: m.recent,
      // Server-side view (every client of this database), when pg_stat_statements is there.
      database: await db.statements.top({
        orderBy: orderBy === 'mean' ? 'mean' : orderBy === 'count' ? 'calls' : 'total',
        limit: q.limit ?? 20,
      }),
    }
  })

  app.get(`${base}/slow-queries`, route, async (req) => {
    const q = parseWith(LimitQuery, req.query, 'query string')
    const m = db.monitor.stats({ top: 10, recent: 0 })
    return {
      thresholdMs: m.slowQueryMs,
      slowCount: m.slowCount,
      slowShare: m.slowShare,
      items: db.monitor.slowQueries(q.limit ?? 100),
      topSlow: m.topSlow,
    }
  })

  app.get(`${base}/index-suggestions`, route, async (req) => {
    const q = parseWith(SuggestionsQuery, req.query, 'query string')
    return db.advisor.indexSuggestions({ method: q.method ?? 'auto' })
  })

  app.get(`${base}/pool`, route, async () => ({
    ...db.pool.stats(),
    checkedOut: db.health.checkedOut,
  }))

  app.get(`${base}/pool/leaks`, route, async (req) => {
    const q = parseWith(LeaksQuery, req.query, 'query string')
    const items = await db.health.leaks(q.minHeldMs === undefined ? {} : { minHeldMs: q.minHeldMs })
    return { items }
  })

  app.get(`${base}/long-running`, route, async (req) => {
    const q = parseWith(LongRunningQuery, req.query, 'query string')
    return db.health.longRunning(
      q.minDurationMs === undefined ? {} : { minDurationMs: q.minDurationMs },
    )
  })

  app.post<{ Params: { pid: string } }>(
    `${base}/long-running/:pid/terminate`,
    route,
    async (req) => {
      const pid = Number(req.params.pid)
      if (!Number.isInteger(pid) || pid <= 0) invalid('pid must be a positive integer')
      const body = parseWith(TerminateBody, req.body, 'body')
      return db.health.terminate(pid, body.action ? { action: body.action } : {})
    },
  )

  app.get(`${base}/cache`, route, async () => perf.requireCache().stats())

  app.get(`${base}/cache/hottest-keys`, route, async (req) => {
    const q = parseWith(LimitQuery, req.query, 'query string')
    return {
      items: perf
        .requireCache()
        .stats()
        .hottestKeys.slice(0, q.limit ?? 10),
    }
  })

  app.post(`${base}/cache/warmup`, route, async (req, reply) => {
    const cache = perf.requireCache()
    const body = parseWith(WarmupBody, req.body, 'body')
    // Runs in the background; progress is read from GET /cache/warmup/status.
    return reply.code(202).send(await perf.warmup.start(cache, body.warmer, body.concurrency))
  })

  app.get(`${base}/cache/warmup/status`, route, async () => {
    perf.requireCache()
    return perf.warmup.status()
  })

  app.post(`${base}/cache/clear`, route, async (req) => {
    const cache = perf.requireCache()
    const body = parseWith(ClearBody, req.body, 'body')
    await cache.namespace(body.namespace).clear()
    return { cleared: body.namespace }
  })

  app.get(`${base}/locks`, route, async () => db.locks.contention())

  app.get(`${base}/alerts`, route, async () => perf.alertsReport())

  app.get(`${base}/history`, route, async (req) => {
    const q = parseWith(HistoryQuery, req.query, 'query string')
    return perf.historyReport(historyDuration(q.duration))
  })

  app.post(`${base}/query-plan`, route, async (req) => {
    const body = parseWith(PlanBody, req.body, 'body')
    return db.explain(body.sql, body.params, {
      analyze: body.analyze ?? false,
      readOnly: true,
      timeoutMs: 10_000,
    })
  })

  app.post(`${base}/reset`, route, async () => {
    db.monitor.reset()
    return { reset: 'monitor', at: new Date().toISOString() }
  })
}

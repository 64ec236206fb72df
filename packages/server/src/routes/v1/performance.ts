import { parseDuration } from '@strata/core'
import type { Cache, WarmResult, WarmTask } from '@strata/cache'
import { ProjectStore } from '@strata/events'
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { serverErrors } from '../../errors.js'
import { AlertManager, type AlertOptions } from '../../performance/alerts.js'
import { healthReport, type HealthReport } from '../../performance/health-score.js'
import { ProcessMonitor, type ProcessMonitorOptions } from '../../performance/process-monitor.js'
import { collectSnapshot, type PerformanceSnapshot } from '../../performance/snapshot.js'
import { requirePrincipal } from '../../plugins/auth.js'

export interface PerformanceRoutesOptions {
  /** The cache to report on and manage; defaults to `app.cache` when decorated. */
  cache?: Cache
  /** Named warm-up task lists for POST /cache/warmup (`{"warmer": name}`; all when absent). */
  warmers?: Record<string, () => WarmTask[] | Promise<WarmTask[]>>
  alerts?: AlertOptions
  process?: ProcessMonitorOptions
  /** How often alerts are evaluated in the background (ms); 0 = only on request. @defaultValue 10000 */
  evaluateEveryMs?: number
  /** Sample pg_stat_statements into the history tables (needs the `pg` migration set). @defaultValue true */
  sampleStatements?: boolean
}

interface HistoryEntry {
  at: string
  score: number
  queries: number
  p95Ms: number
  slowShare: number
  poolUtilization: number
  eventLoopP99Ms: number
  heapUsedRatio: number
}

const HISTORY_MAX = 1440 // one entry a minute for 24 h

function invalid(message: string, details?: unknown): never {
  throw serverErrors.create('STRATA_VALIDATION_FAILED', {
    message,
    ...(details === undefined ? {} : { details }),
  })
}

function parse<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value ?? {})
  if (!r.success)
    invalid(
      `${where}: ${r.error.issues.map((i) => `${i.path.join('.') || 'value'} ${i.message}`).join('; ')}`,
      r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    )
  return r.data
}

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

/**
 * `/v1/performance/*` (operator token only: database-wide data). The process monitor, alert
 * evaluation and history live here; the database parts come from `app.db` (@strata/pg).
 */
export default async function performanceRoutes(
  app: FastifyInstance,
  opts: PerformanceRoutesOptions = {},
): Promise<void> {
  const db = app.db
  const auth = requirePrincipal(
    { store: new ProjectStore(db), adminToken: app.config.adminToken },
    { operator: true },
  )
  const cache = opts.cache ?? (app as unknown as { cache?: Cache }).cache
  const processMonitor = new ProcessMonitor(opts.process)
  app.metricsRegistries.push(processMonitor.registry)
  const alerts = new AlertManager({
    onWebhookError: (err, t) =>
      app.log.warn(
        { err: (err as Error)?.message, alert: t.alert, state: t.state },
        'alert webhook failed',
      ),
    ...opts.alerts,
  })
  const history: HistoryEntry[] = []
  let lastHistoryAt = 0
  let warmup:
    | {
        id: number
        warmer: string | null
        state: 'running' | 'done' | 'failed'
        startedAt: string
        total: number
        done: number
        failed: number
        result?: Omit<WarmResult, 'failed'> & { failed: { key: string; error: string }[] }
        error?: string
      }
    | undefined
  let warmupSeq = 0

  /** Snapshot → alerts (+ history once a minute). */
  async function evaluate(): Promise<{ snapshot: PerformanceSnapshot; health: HealthReport }> {
    const snapshot = await collectSnapshot(db, processMonitor, cache)
    alerts.evaluate(snapshot)
    const health = healthReport(snapshot)
    const now = Date.now()
    if (now - lastHistoryAt >= 60_000) {
      lastHistoryAt = now
      history.push({
        at: snapshot.at,
        score: health.overall.score,
        queries: snapshot.database.queries.count,
        p95Ms: snapshot.database.queries.p95,
        slowShare: snapshot.database.queries.slowShare,
        poolUtilization: snapshot.database.pool.utilization,
        eventLoopP99Ms: snapshot.application.eventLoop.delayP99Ms,
        heapUsedRatio: snapshot.application.memory.heapUsedRatio,
      })
      if (history.length > HISTORY_MAX) history.shift()
    }
    return { snapshot, health }
  }

  let timer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    const every = opts.evaluateEveryMs ?? 10_000
    if (every > 0) {
      timer = setInterval(() => {
        evaluate().catch((err: unknown) =>
          app.log.warn({ err: (err as Error).message }, 'performance evaluation failed'),
        )
      }, every)
      timer.unref()
    }
    if (opts.sampleStatements ?? true) db.statements.startSampler()
  })
  app.addHook('onClose', async () => {
    if (timer) clearInterval(timer)
    db.statements.stop()
    processMonitor.stop()
    const i = app.metricsRegistries.indexOf(processMonitor.registry)
    if (i >= 0) app.metricsRegistries.splice(i, 1)
  })

  function needCache(): Cache {
    if (!cache)
      throw serverErrors.create('STRATA_NOT_READY', {
        message: 'This service runs without a cache (no @strata/cache instance configured)',
        details: { dependency: 'cache' },
      })
    return cache
  }

  const base = '/v1/performance'
  const route = { preValidation: auth }

  app.get(base, route, async () => {
    const { snapshot, health } = await evaluate()
    const m = db.monitor.stats({ top: 5, recent: 0 })
    return {
      at: snapshot.at,
      health: {
        score: health.overall.score,
        status: health.overall.status,
        components: Object.fromEntries(
          Object.entries(health.components).map(([k, c]) => [k, c ? c.score : null]),
        ),
      },
      queries: {
        since: m.since,
        count: m.count,
        slowQueryMs: m.slowQueryMs,
        slowCount: m.slowCount,
        slowShare: m.slowShare,
        errors: m.errors,
        p50: m.p50,
        p95: m.p95,
        p99: m.p99,
        window: snapshot.database.queries,
        byType: m.byType,
        topSlow: m.topSlow,
      },
      pool: snapshot.database.pool,
      cache: snapshot.cache ?? null,
      process: snapshot.application,
      locks: snapshot.locks,
      alerts: alerts.firing(),
      issues: health.issues,
      recommendations: health.recommendations,
    }
  })

  app.get(`${base}/health`, route, async () => (await evaluate()).health)

  app.get(`${base}/queries`, route, async (req) => {
    const q = parse(QueriesQuery, req.query, 'query string')
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
    const q = parse(LimitQuery, req.query, 'query string')
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
    const q = parse(SuggestionsQuery, req.query, 'query string')
    return db.advisor.indexSuggestions({ method: q.method ?? 'auto' })
  })

  app.get(`${base}/pool`, route, async () => ({
    ...db.pool.stats(),
    checkedOut: db.health.checkedOut,
  }))

  app.get(`${base}/pool/leaks`, route, async (req) => {
    const q = parse(LeaksQuery, req.query, 'query string')
    const items = await db.health.leaks(q.minHeldMs === undefined ? {} : { minHeldMs: q.minHeldMs })
    return { items }
  })

  app.get(`${base}/long-running`, route, async (req) => {
    const q = parse(LongRunningQuery, req.query, 'query string')
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
      const body = parse(TerminateBody, req.body, 'body')
      return db.health.terminate(pid, body.action ? { action: body.action } : {})
    },
  )

  app.get(`${base}/cache`, route, async () => needCache().stats())

  app.get(`${base}/cache/hottest-keys`, route, async (req) => {
    const q = parse(LimitQuery, req.query, 'query string')
    return {
      items: needCache()
        .stats()
        .hottestKeys.slice(0, q.limit ?? 10),
    }
  })

  app.post(`${base}/cache/warmup`, route, async (req, reply) => {
    const c = needCache()
    const body = parse(WarmupBody, req.body, 'body')
    const warmers = opts.warmers ?? {}
    if (body.warmer !== undefined && !(body.warmer in warmers))
      invalid(`unknown warmer ${JSON.stringify(body.warmer)}`, { known: Object.keys(warmers) })
    if (warmup?.state === 'running')
      throw serverErrors.create('STRATA_BAD_REQUEST', {
        message: 'A cache warm-up is already running',
        details: { id: warmup.id },
      })
    const names = body.warmer !== undefined ? [body.warmer] : Object.keys(warmers)
    const tasks = (await Promise.all(names.map((n) => warmers[n]!()))).flat()
    const run = {
      id: ++warmupSeq,
      warmer: body.warmer ?? null,
      state: 'running' as 'running' | 'done' | 'failed',
      startedAt: new Date().toISOString(),
      total: tasks.length,
      done: 0,
      failed: 0,
    }
    warmup = run
    // Runs in the background; progress is read from GET /cache/warmup/status.
    c.warm(tasks, {
      ...(body.concurrency ? { concurrency: body.concurrency } : {}),
      onProgress: (p) => {
        run.done = p.done
        run.failed = p.failed
      },
    }).then(
      (result) => {
        Object.assign(run, {
          state: 'done',
          result: {
            ...result,
            failed: result.failed.map((f) => ({
              key: f.key,
              error: String((f.error as Error)?.message ?? f.error),
            })),
          },
        })
      },
      (err: unknown) => Object.assign(run, { state: 'failed', error: (err as Error).message }),
    )
    return reply.code(202).send(run)
  })

  app.get(`${base}/cache/warmup/status`, route, async () => {
    needCache()
    return warmup ?? { state: 'idle', warmers: Object.keys(opts.warmers ?? {}) }
  })

  app.post(`${base}/cache/clear`, route, async (req) => {
    const c = needCache()
    const body = parse(ClearBody, req.body, 'body')
    await c.namespace(body.namespace).clear()
    return { cleared: body.namespace }
  })

  app.get(`${base}/locks`, route, async () => db.locks.contention())

  app.get(`${base}/alerts`, route, async () => {
    await evaluate()
    return {
      firing: alerts.firing(),
      alerts: alerts.list(),
      thresholds: alerts.thresholds,
      webhook: alerts.webhook,
    }
  })

  app.get(`${base}/history`, route, async (req) => {
    const q = parse(HistoryQuery, req.query, 'query string')
    let durationMs: number
    try {
      durationMs = parseDuration(q.duration ?? '1h', 'duration')
    } catch {
      invalid('duration must be a duration such as 15m, 6h or 7d')
    }
    if (durationMs <= 0 || durationMs > 14 * 86_400_000)
      invalid('duration must be between 1 ms and 14 days')
    const since = Date.now() - durationMs
    const missing = await db.statements.availability()
    let statements: unknown = missing ?? null
    let regressions: unknown = []
    if (!missing) {
      try {
        statements = { available: true, ...(await db.statements.history({ durationMs })) }
        regressions = await db.statements.regressions()
      } catch (err) {
        // The history tables come with the `pg` migration set; say so rather than fail.
        statements = {
          available: false,
          message: `statement history unavailable: ${(err as Error).message}`,
          hint: 'Run `strata migrate` (the pg migration set creates strata_statement_history)',
        }
      }
    }
    return {
      durationMs,
      service: history.filter((h) => Date.parse(h.at) >= since),
      statements,
      regressions,
    }
  })

  app.post(`${base}/query-plan`, route, async (req) => {
    const body = parse(PlanBody, req.body, 'body')
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

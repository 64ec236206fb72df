import type { Cache } from '@strata/cache'
import type { Logger } from '@strata/core'
import type { Database } from '@strata/pg'
import type { Registry } from 'prom-client'
import { serverErrors } from '../errors.js'
import { AlertManager, type AlertOptions } from './alerts.js'
import { CacheWarmup, type Warmers } from './cache-warmup.js'
import { healthReport, type HealthReport } from './health-score.js'
import { ServiceHistory, type HistoryEntry } from './history.js'
import { ProcessMonitor, type ProcessMonitorOptions } from './process-monitor.js'
import { collectSnapshot, type PerformanceSnapshot } from './snapshot.js'

export interface PerformanceOptions {
  /** The cache to report on and manage; default the app's cache; null: none (its routes answer 503). */
  cache?: Cache | null
  /** Named warm-up task lists for POST /cache/warmup. @defaultValue {} */
  warmers?: Warmers
  alerts?: AlertOptions
  process?: ProcessMonitorOptions
  /** How often alerts are evaluated in the background (ms); 0 = only on request. @defaultValue 10000 */
  evaluateEveryMs?: number
  /** Sample pg_stat_statements into the history tables (needs the `pg` migration set). @defaultValue true */
  sampleStatements?: boolean
}

/**
 * The service's performance state: process monitor, alert manager (evaluated on a timer and on
 * request), the history ring and the cache warm-up. start() begins the timer and the statement
 * sampler; close() stops them.
 */
export class PerformanceService {
  readonly processMonitor: ProcessMonitor
  readonly alerts: AlertManager
  readonly history = new ServiceHistory()
  readonly warmup: CacheWarmup
  readonly #db: Database
  readonly #cache: Cache | undefined
  readonly #log: Logger
  readonly #evaluateEveryMs: number
  readonly #sampleStatements: boolean
  #timer: NodeJS.Timeout | undefined

  constructor(
    db: Database,
    options: Omit<PerformanceOptions, 'cache'> & { cache: Cache | undefined; logger: Logger },
  ) {
    const log = options.logger
    this.#db = db
    this.#cache = options.cache
    this.#log = log
    this.#evaluateEveryMs = options.evaluateEveryMs ?? 10_000
    this.#sampleStatements = options.sampleStatements ?? true
    this.processMonitor = new ProcessMonitor(options.process)
    this.alerts = new AlertManager({
      onWebhookError: (err, t) =>
        log.warn({ err, alert: t.alert, state: t.state }, 'alert webhook failed'),
      ...options.alerts,
    })
    this.warmup = new CacheWarmup(options.warmers)
  }

  /** The process metrics (event-loop delay, heap), for /metrics. */
  get registry(): Registry {
    return this.processMonitor.registry
  }

  /** Takes a snapshot, evaluates the alerts on it and records it in the history. */
  async evaluate(): Promise<{ snapshot: PerformanceSnapshot; health: HealthReport }> {
    const snapshot = await collectSnapshot(this.#db, this.processMonitor, this.#cache)
    this.alerts.evaluate(snapshot)
    const health = healthReport(snapshot)
    this.history.record(snapshot, health)
    return { snapshot, health }
  }

  /** The cache, or a 503 STRATA_NOT_READY when the service runs without one. */
  requireCache(): Cache {
    if (!this.#cache)
      throw serverErrors.create('STRATA_NOT_READY', {
        message: 'This service runs without a cache (no @strata/cache instance configured)',
        details: { dependency: 'cache' },
      })
    return this.#cache
  }

  /** GET /v1/performance: health, queries, pool, cache, process, locks, alerts at a glance. */
  async overview(): Promise<Record<string, unknown>> {
    const { snapshot, health } = await this.evaluate()
    const m = this.#db.monitor.stats({ top: 5, recent: 0 })
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
      alerts: this.alerts.firing(),
      issues: health.issues,
      recommendations: health.recommendations,
    }
  }

  /** GET /v1/performance/alerts: evaluates now, then every alert's state and the webhook's. */
  async alertsReport(): Promise<Record<string, unknown>> {
    await this.evaluate()
    return {
      firing: this.alerts.firing(),
      alerts: this.alerts.list(),
      thresholds: this.alerts.thresholds,
      webhook: this.alerts.webhook,
    }
  }

  /** The service's history over the last `durationMs`, with pg_stat_statements' when there. */
  async historyReport(durationMs: number): Promise<{
    durationMs: number
    service: HistoryEntry[]
    statements: unknown
    regressions: unknown
  }> {
    const since = Date.now() - durationMs
    const db = this.#db
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
    return { durationMs, service: this.history.since(since), statements, regressions }
  }

  /** Starts the background evaluation timer and, unless disabled, the statement sampler. */
  start(): void {
    if (this.#evaluateEveryMs > 0 && !this.#timer) {
      this.#timer = setInterval(() => {
        this.evaluate().catch((err: unknown) =>
          this.#log.warn({ err }, 'performance evaluation failed'),
        )
      }, this.#evaluateEveryMs)
      this.#timer.unref()
    }
    if (this.#sampleStatements) this.#db.statements.startSampler()
  }

  /** Stops the timer, the statement sampler and the event-loop histogram. Idempotent. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    this.#db.statements.stop()
    this.processMonitor.stop()
  }
}

import { hostname } from 'node:os'
import type { Cache } from '@strata/cache'
import type { Logger } from '@strata/core'
import { createRedisLock, type LockProvider } from '@strata/lock'
import type { Database } from '@strata/pg'
import type { Cluster, Redis } from 'ioredis'
import type { Registry } from 'prom-client'
import { serverErrors } from '../errors.js'
import { AlertManager, type AlertOptions } from './alerts.js'
import { CacheWarmup, type Warmers } from './cache-warmup.js'
import { clusterSummary } from './cluster-summary.js'
import { healthReport, type HealthReport } from './health-score.js'
import { ServiceHistory, type HistoryEntry } from './history.js'
import {
  InstanceRegistry,
  newInstanceId,
  type InstanceEntry,
  type InstanceRegistryOptions,
} from './instance-registry.js'
import { LeaderElection } from './leader-election.js'
import { ProcessMonitor, type ProcessMonitorOptions } from './process-monitor.js'
import { collectSnapshot, type PerformanceSnapshot } from './snapshot.js'
import type { ReplicaState } from '../replica/replica-monitor.js'

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
  /** Several instances on one Redis: the instance registry and the alert leader election. */
  cluster?: ClusterOptions
  /** The read replica's state (lag, up, where analytics read), scored in the health report. */
  replica?: () => ReplicaState | null
}

export interface ClusterOptions extends InstanceRegistryOptions {
  /** TTL of the alert leader's lock (ms); a dead leader is replaced after about this long. @defaultValue 15000 */
  leaderTtlMs?: number
  /** Pause between attempts to become the alert leader (ms). @defaultValue leaderTtlMs / 3 */
  leaderRetryMs?: number
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
  /** `hostname:pid:random`, in the webhook payload and the instance list. */
  readonly instanceId = newInstanceId()
  /** With Redis: who delivers alert webhooks; null: this instance alone. */
  readonly leader: LeaderElection | null = null
  /** With Redis: the live instances and their snapshots; null without Redis. */
  readonly instances: InstanceRegistry | null = null
  readonly #locks: LockProvider | undefined
  readonly #db: Database
  readonly #cache: Cache | undefined
  readonly #log: Logger
  readonly #evaluateEveryMs: number
  readonly #sampleStatements: boolean
  readonly #replica: (() => ReplicaState | null) | undefined
  #timer: NodeJS.Timeout | undefined

  constructor(
    db: Database,
    options: Omit<PerformanceOptions, 'cache'> & {
      cache: Cache | undefined
      logger: Logger
      /** Present: this instance is one of several sharing this Redis. */
      redis?: Redis | Cluster
    },
  ) {
    const log = options.logger
    this.#db = db
    this.#cache = options.cache
    this.#log = log
    this.#evaluateEveryMs = options.evaluateEveryMs ?? 10_000
    this.#sampleStatements = options.sampleStatements ?? true
    this.#replica = options.replica
    this.processMonitor = new ProcessMonitor(options.process)
    const cluster = options.cluster ?? {}
    const prefix = cluster.prefix ?? 'strata:'
    if (options.redis) {
      // Every instance evaluates its alerts (its own API shows them), but only the leader
      // delivers webhooks: N instances, one webhook per transition.
      this.#locks = createRedisLock({ redis: options.redis, prefix, logger: log })
      this.leader = new LeaderElection(this.#locks, {
        key: 'alerts-leader',
        logger: log,
        ...(cluster.leaderTtlMs ? { ttlMs: cluster.leaderTtlMs } : {}),
        ...(cluster.leaderRetryMs ? { retryMs: cluster.leaderRetryMs } : {}),
      })
      this.instances = new InstanceRegistry(options.redis, {
        ...cluster,
        prefix,
        id: this.instanceId,
        logger: log,
        snapshot: async () => {
          // No alert evaluation or history entry: publishing must not change this instance's state.
          const snapshot = await collectSnapshot(this.#db, this.processMonitor, this.#cache)
          return this.#overviewOf(snapshot, this.#health(snapshot))
        },
      })
    }
    const leader = this.leader
    this.alerts = new AlertManager({
      onWebhookError: (err, t) =>
        log.warn({ err, alert: t.alert, state: t.state }, 'alert webhook failed'),
      instanceId: this.instanceId,
      ...(leader ? { leaderFence: () => leader.fence } : {}),
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
    const health = this.#health(snapshot)
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
    return this.#overviewOf(snapshot, health)
  }

  #health(snapshot: PerformanceSnapshot): HealthReport {
    return healthReport({ ...snapshot, replica: this.#replica?.() ?? null })
  }

  #overviewOf(snapshot: PerformanceSnapshot, health: HealthReport): Record<string, unknown> {
    const m = this.#db.monitor.stats({ top: 5, recent: 0 })
    return {
      at: snapshot.at,
      instance: this.instanceId,
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
      leader: this.leader ? { self: this.leader.isLeader, fence: this.leader.fence } : null,
    }
  }

  /**
   * GET /v1/performance/instances: every live instance with its published snapshot and age,
   * and the cluster summed up. Without Redis: this instance alone, snapshot taken now.
   */
  async instancesReport(): Promise<Record<string, unknown>> {
    let instances: InstanceEntry[]
    if (this.instances) {
      await this.instances.publish()
      instances = await this.instances.list()
    } else {
      const snapshot = await collectSnapshot(this.#db, this.processMonitor, this.#cache)
      const now = new Date().toISOString()
      instances = [
        {
          id: this.instanceId,
          hostname: hostname(),
          pid: process.pid,
          startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
          publishedAt: now,
          ageMs: 0,
          self: true,
          snapshot: this.#overviewOf(snapshot, this.#health(snapshot)),
        },
      ]
    }
    return {
      clustered: this.instances !== null,
      self: this.instanceId,
      alertsLeader: this.leader ? this.leader.isLeader : true,
      instances,
      cluster: clusterSummary(instances),
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
    this.leader?.start()
    this.instances?.start()
  }

  /**
   * Stops the timer, the statement sampler and the event-loop histogram; with Redis, removes
   * this instance from the registry and hands the alert leadership over. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    this.#db.statements.stop()
    this.processMonitor.stop()
    await this.instances?.close()
    await this.leader?.close()
    await this.#locks?.close()
  }
}

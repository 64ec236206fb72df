import type { ReplicaState } from '../replica/replica-monitor.js'
import type { PerformanceSnapshot } from './snapshot.js'

export type HealthStatus = 'excellent' | 'good' | 'degraded' | 'critical'

export interface ComponentHealth {
  score: number
  status: HealthStatus
  healthy: boolean
  /** What cost points, in words. */
  issues: string[]
}

export interface HealthReport {
  at: string
  overall: { score: number; status: HealthStatus; healthy: boolean }
  components: {
    database: ComponentHealth
    /** null when the service runs without a cache. */
    cache: ComponentHealth | null
    application: ComponentHealth
    locks: ComponentHealth
    /** The read replica (DATABASE_READ_URL): up, lag against STRATA_REPLICA_MAX_LAG; absent without one. */
    replica?: ComponentHealth
  }
  issues: string[]
  recommendations: string[]
}

/**
 * Each signal costs up to `weight` points, linearly between `good` (0 points) and `bad`
 * (all of them): docs/guides/performance.md documents the table.
 */
interface Signal {
  value: number
  good: number
  bad: number
  weight: number
  issue: (v: number) => string
  recommendation: string
}

function penalty(s: Signal): number {
  const t = (s.value - s.good) / (s.bad - s.good) // works for falling scales too (bad < good)
  return s.weight * Math.min(1, Math.max(0, t))
}

function status(score: number): HealthStatus {
  return score >= 90 ? 'excellent' : score >= 70 ? 'good' : score >= 50 ? 'degraded' : 'critical'
}

function component(signals: Signal[], issues: string[], recs: Set<string>): ComponentHealth {
  let lost = 0
  const own: string[] = []
  for (const s of signals) {
    const p = penalty(s)
    if (p > 0) {
      lost += p
      own.push(s.issue(s.value))
      recs.add(s.recommendation)
    }
  }
  const score = Math.round(Math.max(0, 100 - lost))
  issues.push(...own)
  return { score, status: status(score), healthy: score >= 70, issues: own }
}

const pct = (v: number): string => `${Math.round(v * 1000) / 10} %`
const ms = (v: number): string => `${Math.round(v)} ms`

/** Component weights in the overall score (absent components are left out and the rest rescaled). */
export const HEALTH_WEIGHTS = Object.freeze({
  database: 0.4,
  cache: 0.2,
  application: 0.2,
  locks: 0.2,
  // Scored only with a replica; while it is down or lagging the primary answers, so it weighs little.
  replica: 0.1,
})
/** The overall score never exceeds the worst component by more than this. */
export const HEALTH_WORST_MARGIN = 30

/**
 * The health of a snapshot; `s.replica` (the replica monitor's state, when the service has a
 * read replica) adds a `replica` component.
 */
export function healthReport(
  s: PerformanceSnapshot & { replica?: ReplicaState | null },
): HealthReport {
  const issues: string[] = []
  const recs = new Set<string>()
  const q = s.database.queries
  const pool = s.database.pool
  const database = component(
    [
      {
        value: q.count >= 20 ? q.slowShare : 0,
        good: 0.01,
        bad: 0.1,
        weight: 30,
        issue: (v) => `${pct(v)} of recent queries were slow`,
        recommendation:
          'Look at GET /v1/performance/slow-queries and /index-suggestions; EXPLAIN the worst with POST /v1/performance/query-plan',
      },
      {
        value: q.count ? q.p95 : 0,
        good: 100,
        bad: 1000,
        weight: 25,
        issue: (v) => `query p95 latency is ${ms(v)}`,
        recommendation:
          'Find the statements behind the p95 in /v1/performance/queries and index or cache them',
      },
      {
        value: pool.utilization,
        good: 0.7,
        bad: 1,
        weight: 20,
        issue: (v) => `connection pool is ${pct(v)} used`,
        recommendation:
          'Raise DATABASE_POOL_MAX (within the server’s max_connections, or put PgBouncer in front) or shorten transactions',
      },
      {
        value: pool.waiting,
        good: 0,
        bad: 10,
        weight: 15,
        issue: (v) => `${v} callers are waiting for a pool connection`,
        recommendation:
          'Callers queue for connections: raise DATABASE_POOL_MAX or find long transactions (/v1/performance/long-running)',
      },
      {
        value: s.database.leaks,
        good: 0,
        bad: 3,
        weight: 10,
        issue: (v) => `${v} database clients held past the leak threshold`,
        recommendation:
          'See /v1/performance/pool/leaks for where leaked clients were acquired (DATABASE_LEAK_STACKS=true for stacks)',
      },
      {
        value: s.database.reachable ? 0 : 1,
        good: 0,
        bad: 1,
        weight: 100,
        issue: () => 'the database could not be queried',
        recommendation: 'Check DATABASE_URL, the server and the network (GET /readyz)',
      },
    ],
    issues,
    recs,
  )
  const cache = s.cache
    ? component(
        [
          {
            value: s.cache.l2HitRate !== null && s.cache.l2Requests >= 100 ? s.cache.l2HitRate : 1,
            good: 0.9,
            bad: 0.5,
            weight: 40,
            issue: (v) => `Redis cache hit rate is ${pct(v)}`,
            recommendation:
              'Raise CACHE_TTL_* for hot data, warm the cache (POST /v1/performance/cache/warmup) or check invalidation storms',
          },
          {
            value: s.cache.l1Requests >= 100 ? s.cache.l1HitRate : 1,
            good: 0.8,
            bad: 0.3,
            weight: 30,
            issue: (v) => `in-process cache hit rate is ${pct(v)}`,
            recommendation:
              'Give the in-process cache more entries/bytes or longer TTLs for hot keys (/v1/performance/cache/hottest-keys)',
          },
          {
            value: s.cache.breaker === 'open' ? 1 : 0,
            good: 0,
            bad: 1,
            weight: 30,
            issue: () => 'the Redis circuit breaker is open (serving from memory and factories)',
            recommendation: 'Check Redis (REDIS_URL) health and latency',
          },
        ],
        issues,
        recs,
      )
    : null
  const app = s.application
  const application = component(
    [
      {
        value: app.eventLoop.delayP99Ms,
        good: 20,
        bad: 200,
        weight: 40,
        issue: (v) => `event-loop delay p99 is ${ms(v)}`,
        recommendation:
          'Move CPU-heavy work (parsing, compression, crypto) off the event loop or add instances',
      },
      {
        value: app.eventLoop.utilization,
        good: 0.7,
        bad: 1,
        weight: 20,
        issue: (v) => `event loop busy ${pct(v)} of the time`,
        recommendation:
          'The process is CPU-bound: scale out or profile hot paths (node --cpu-prof)',
      },
      {
        value: app.memory.heapUsedRatio,
        good: 0.7,
        bad: 0.95,
        weight: 40,
        issue: (v) => `heap is ${pct(v)} of its limit`,
        recommendation:
          'Raise --max-old-space-size or look for a leak (heap snapshot); check cache sizes',
      },
    ],
    issues,
    recs,
  )
  const locks = component(
    [
      {
        value: s.locks.blockedSessions,
        good: 0,
        bad: 5,
        weight: 40,
        issue: (v) => `${v} sessions are blocked on locks`,
        recommendation:
          'See /v1/performance/locks for the blocking sessions; keep transactions short and update rows in a consistent order',
      },
      {
        value: s.locks.maxWaitMs,
        good: 1000,
        bad: 30_000,
        weight: 30,
        issue: (v) => `the longest lock wait is ${ms(v)}`,
        recommendation:
          'Set lock_timeout for interactive paths so waits fail fast instead of piling up',
      },
      {
        value: s.locks.deadlocksSinceStart,
        good: 0,
        bad: 5,
        weight: 30,
        issue: (v) => `${v} deadlocks since start`,
        recommendation:
          'Deadlocks come from transactions locking the same rows in different orders: order updates by key',
      },
    ],
    issues,
    recs,
  )
  const r = s.replica
  const replica = r
    ? component(
        [
          {
            value: r.status === 'down' ? 1 : 0,
            good: 0,
            bad: 1,
            weight: 50,
            issue: () => 'the read replica is down: analytics read the primary',
            recommendation:
              'Check the replica behind DATABASE_READ_URL (server, network, replication); analytics load the primary meanwhile',
          },
          {
            // Half the bound costs nothing; at the bound (reads moved to the primary) all of it.
            value: r.lagSeconds ?? 0,
            good: r.maxLagSeconds / 2,
            bad: r.maxLagSeconds,
            weight: 40,
            issue: (v) =>
              `the read replica is ${v} s behind (STRATA_REPLICA_MAX_LAG ${r.maxLagSeconds} s)`,
            recommendation:
              'Replication lags: look at the replica’s replay (pg_stat_wal_receiver, long queries conflicting with replay, I/O) or raise STRATA_REPLICA_MAX_LAG',
          },
          {
            value: r.replayPaused ? 1 : 0,
            good: 0,
            bad: 1,
            weight: 10,
            issue: () => 'WAL replay is paused on the read replica',
            recommendation: 'Resume it with SELECT pg_wal_replay_resume() on the replica',
          },
        ],
        issues,
        recs,
      )
    : undefined
  const parts: [ComponentHealth, number][] = [
    [database, HEALTH_WEIGHTS.database],
    [application, HEALTH_WEIGHTS.application],
    [locks, HEALTH_WEIGHTS.locks],
  ]
  if (cache) parts.push([cache, HEALTH_WEIGHTS.cache])
  if (replica) parts.push([replica, HEALTH_WEIGHTS.replica])
  const weighted =
    parts.reduce((n, [c, w]) => n + c.score * w, 0) / parts.reduce((n, [, w]) => n + w, 0)
  const worst = Math.min(...parts.map(([c]) => c.score))
  const score = Math.round(Math.min(weighted, worst + HEALTH_WORST_MARGIN))
  return {
    at: s.at,
    overall: { score, status: status(score), healthy: score >= 70 },
    components: { database, cache, application, locks, ...(replica ? { replica } : {}) },
    issues,
    recommendations: [...recs],
  }
}

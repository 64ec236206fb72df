import type { Cache } from '@strata/cache'
import type { Database, PoolStats, WindowStats } from '@strata/pg'
import type { ProcessMonitor, ProcessStats } from './process-monitor.js'

/** Everything health scores and alerts look at, gathered at one instant. */
export interface PerformanceSnapshot {
  at: string
  database: {
    /** Client-side statement statistics over the monitor's sliding window. */
    queries: WindowStats
    pool: PoolStats
    /** Clients held past the leak threshold. */
    leaks: number
    /** This application's queries running past the long-running threshold. */
    longRunning: number
    idleInTransaction: number
    /** Could the database be queried for sessions and locks? */
    reachable: boolean
  }
  /** Absent when the service runs without a cache. */
  cache?: {
    l1HitRate: number
    l1Requests: number
    /** Redis tier; null without Redis. */
    l2HitRate: number | null
    l2Requests: number
    l2Errors: number
    breaker: string | null
  }
  application: ProcessStats
  locks: {
    blockedSessions: number
    maxWaitMs: number
    deadlocksSinceStart: number
  }
}

/** Gathers a snapshot; database-side parts degrade to zeros (reachable: false) when queries fail. */
export async function collectSnapshot(
  db: Database,
  processMonitor: ProcessMonitor,
  cache: Cache | undefined,
): Promise<PerformanceSnapshot> {
  const [leaks, sessions, locks] = await Promise.all([
    db.health.leaks(),
    db.health.longRunning().catch(() => undefined),
    db.locks.contention().catch(() => undefined),
  ])
  const c = cache?.stats()
  return {
    at: new Date().toISOString(),
    database: {
      queries: db.monitor.window(),
      pool: db.pool.stats(),
      leaks: leaks.length,
      longRunning: sessions?.active.length ?? 0,
      idleInTransaction: sessions?.idleInTransaction.length ?? 0,
      reachable: sessions !== undefined && locks !== undefined,
    },
    ...(c
      ? {
          cache: {
            l1HitRate: c.l1.hitRate,
            l1Requests: c.l1.hits + c.l1.misses,
            l2HitRate: c.l2 ? c.l2.hitRate : null,
            l2Requests: c.l2 ? c.l2.hits + c.l2.misses : 0,
            l2Errors: c.l2?.errors ?? 0,
            breaker: c.l2?.breaker ?? null,
          },
        }
      : {}),
    application: processMonitor.stats(),
    locks: {
      blockedSessions: locks?.blockedSessions ?? 0,
      maxWaitMs: locks?.maxWaitMs ?? 0,
      deadlocksSinceStart: locks?.deadlocks.sinceStart ?? 0,
    },
  }
}

// Answer shapes of the service. Where the service answers with a package's own type as it is
// (no Date fields), that type is imported (type-only: nothing of those packages reaches the
// bundle); the others are JSON views of server-side objects (dates as strings) restated here
// with the fields the pages read.
export type {
  ActiveUsers,
  LoginAnalytics,
  LoginSeriesPoint,
  Page,
  RecentLogin,
  SessionAnalytics,
  UserActivityItem,
} from '@strata/events'
import type { IndexAdvice, MonitoredStatement, PoolStats, TopStatements } from '@strata/pg'
import type { HealthReport, HealthStatus } from '@strata/server'

export type { HealthReport, HealthStatus, PoolStats }

/** GET /performance/index-suggestions: the advisor's answer as it is. */
export type IndexSuggestionsAnswer = IndexAdvice

export interface Project {
  id: string
  name: string
  createdAt: string
}

export type JobStatus = 'queued' | 'running' | 'paused' | 'failed' | 'cancelled' | 'completed'

/** An import job as GET /v1/imports answers it. */
export interface ImportJob {
  id: string
  status: JobStatus
  requested: 'pause' | 'cancel' | null
  reason: string | null
  spec: {
    source?: { format?: string; path?: string }
    target?: { table?: string; mode?: string }
  } | null
  counts: { read: number; loaded: number; rejected: number; skipped: number }
  totalBytes: number | null
  bytesRead: number | null
  throughputRps: number | null
  errorRate: number
  elapsedMs: number
  createdAt: string
  startedAt: string | null
  updatedAt: string
  finishedAt: string | null
}

export interface Alert {
  name: string
  state: 'ok' | 'pending' | 'firing' | string
  since: string
  value: number | null
  threshold: number
  comparison: string
  message: string
}

export interface AlertsAnswer {
  firing: Alert[]
  alerts: Alert[]
}

export interface SlowQuery {
  sql: string
  operation: string
  table: string | null
  label: string | null
  durationMs: number
  at: string
}

export interface SlowQueriesAnswer {
  thresholdMs: number
  slowCount: number
  slowShare: number
  items: SlowQuery[]
}

export interface QueriesAnswer {
  since: string
  statements: MonitoredStatement[]
  /** pg_stat_statements (every client of the database), when the extension is there. */
  database: TopStatements
}

export interface TierStats {
  hits: number
  misses: number
  hitRate: number | null
  size?: number
  bytes?: number
  evictions?: number
  errors?: number
  latency?: { p50: number; p99: number }
}

export interface CacheStats {
  l1: TierStats
  l2?: TierStats | null
  factory?: { calls: number; errors: number; timeouts: number; staleServed: number }
}

export interface PerformanceSummary {
  at: string
  health: { score: number; status: HealthStatus; components: Record<string, number | null> }
  queries: {
    count: number
    slowCount: number
    slowShare: number
    p50: number
    p95: number
    p99: number
  }
  pool: PoolStats
  process: {
    eventLoop: { delayP50Ms: number; delayP99Ms: number; delayMaxMs: number; utilization: number }
    memory: {
      rssBytes: number
      heapUsedBytes: number
      heapLimitBytes: number
      heapUsedRatio: number
    }
    uptimeSeconds: number
  }
}

// Answer shapes of the service. Analytics types come from @strata/events (type-only: nothing of
// it reaches the bundle); the others are JSON views of server-side objects (dates as strings)
// restated here with the fields the pages read.
export type {
  ActiveUsers,
  LoginAnalytics,
  LoginSeriesPoint,
  Page,
  RecentLogin,
  SessionAnalytics,
  UserActivityItem,
} from '@strata/events'

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

export type HealthStatus = 'excellent' | 'good' | 'degraded' | 'critical'

export interface ComponentHealth {
  score: number
  status: HealthStatus
  healthy: boolean
  issues: string[]
}

export interface HealthReport {
  at: string
  overall: { score: number; status: HealthStatus; healthy: boolean }
  components: {
    database: ComponentHealth
    cache: ComponentHealth | null
    application: ComponentHealth
    locks: ComponentHealth
  }
  issues: string[]
  recommendations: string[]
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

/** One statement of the in-process monitor (GET /queries `statements`). */
export interface MonitoredStatement {
  sql: string
  operation: string
  table: string | null
  count: number
  p95: number
  meanMs: number
  totalMs: number
  errors: number
  slow: number
  labels: string[]
}

/** One row of pg_stat_statements (GET /queries `database.items`). */
export interface DatabaseStatement {
  queryid: string
  query: string
  calls: number
  rows: number
  totalMs: number
  meanMs: number
  cacheHitRatio: number | null
}

export interface QueriesAnswer {
  since: string
  statements: MonitoredStatement[]
  database:
    | { available: true; orderBy: string; since?: string; items: DatabaseStatement[] }
    | { available: false; message?: string; hint?: string }
}

export interface IndexSuggestion {
  schema: string
  table: string
  columns: string[]
  create: string
  costBefore: number
  costAfter: number | null
  improvement: number | null
  queries: string[]
  method: 'hypopg' | 'heuristic'
  reason: string
}

export interface IndexSuggestionsAnswer {
  method: string
  suggestions: IndexSuggestion[]
  unusedIndexes?: { schema: string; table: string; index: string; bytes: number; drop: string }[]
}

export interface PoolStats {
  total: number
  idle: number
  active: number
  waiting: number
  utilization: number
  max: number
  acquireWait: { count: number; p50: number; p95: number; p99: number; max: number }
  errors: { acquireFailed: number; connectionLost: number; discarded: number }
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

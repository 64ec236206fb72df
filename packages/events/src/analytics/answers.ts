/** The answers of the analytics queries, as the HTTP API returns them. */
import type { ActivityGroupBy } from './params.js'

export interface RangeEcho {
  from: string
  to: string
  tz: string
  interval?: string
}

export interface LoginSeriesPoint {
  start: string
  logins: number
  successes: number
  failures: number
  uniqueUsers: number
}

export interface LoginAnalytics {
  range: RangeEcho
  totals: {
    logins: number
    successes: number
    failures: number
    successRate: number
    uniqueUsers: number
  }
  byMethod: Record<string, number>
  byDevice: Record<string, number>
  byBrowser: Record<string, number>
  byOs: Record<string, number>
  series: LoginSeriesPoint[]
  /**
   * How unique users are counted: `exact` (COUNT DISTINCT over raw rows, see the README), or
   * `skipped` when asked with `uniques: false` (every `uniqueUsers` is then 0; rollups only).
   */
  uniqueUsersEstimator: 'exact' | 'skipped'
}

export interface ActiveUsers {
  range: RangeEcho
  dau: number
  wau: number
  mau: number
  series: { start: string; dau: number; wau: number; mau: number }[]
  uniqueUsersEstimator: 'exact'
}

export interface ActivityAnalytics {
  range: RangeEcho
  groupBy: ActivityGroupBy
  totals: { activities: number }
  groups: Record<string, number>
  series: { start: string; activities: number }[]
}

export interface SessionAnalytics {
  range: RangeEcho
  active: number
  created: number
  ended: number
  averageLengthSeconds: number | null
}

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

export interface RecentLogin {
  messageId: string
  userId: string
  email: string | null
  method: string
  success: boolean
  failureReason: string | null
  sessionId: string | null
  ip: string | null
  deviceType: string
  browser: string | null
  os: string | null
  userAgent: string | null
  timestamp: string
  receivedAt: string
}

/** Optional filters of the recent-logins list (all must match). */
export interface RecentLoginsFilter {
  method?: string
  success?: boolean
  userId?: string
}

export interface UserActivityItem {
  messageId: string
  userId: string
  sessionId: string | null
  action: string
  entityType: string | null
  entityId: string | null
  metadata: unknown
  timestamp: string
}

/** Label used for activities without an entity type (stored as NULL; '' in the rollups). */
export const NO_ENTITY_TYPE = '(none)'

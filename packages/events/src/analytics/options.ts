/** Limits of the analytics queries. */
export interface AnalyticsOptions {
  /** Longest accepted `[from, to)` range. @defaultValue 400 days */
  maxRangeMs?: number
  /** Most buckets one series may have (an hourly series over a year is refused). @defaultValue 2000 */
  maxBuckets?: number
  /** Default range when `from` is absent: `to` minus this. @defaultValue 30 days */
  defaultRangeMs?: number
  /** Largest `limit` of list endpoints (larger values are clamped). @defaultValue 500 */
  maxLimit?: number
  /** `limit` when absent. @defaultValue 50 */
  defaultLimit?: number
  /** Statement timeout of one analytics query. @defaultValue 30000 */
  statementTimeoutMs?: number
}

export type ResolvedAnalyticsOptions = Required<AnalyticsOptions>

const DAY = 86_400_000

export const ANALYTICS_DEFAULTS: ResolvedAnalyticsOptions = {
  maxRangeMs: 400 * DAY,
  maxBuckets: 2000,
  defaultRangeMs: 30 * DAY,
  maxLimit: 500,
  defaultLimit: 50,
  statementTimeoutMs: 30_000,
}

export function resolveAnalyticsOptions(o: AnalyticsOptions = {}): ResolvedAnalyticsOptions {
  return {
    ...ANALYTICS_DEFAULTS,
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  }
}

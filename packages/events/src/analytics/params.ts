import { decodeKeysetCursor, encodeKeysetCursor, type KeysetCursor } from '@strata/core'
import { parseIsoTimestamp } from '../validation/timestamp.js'
import { analyticsErrors } from './errors.js'
import type { ResolvedAnalyticsOptions } from './options.js'
import { parseTimeZone } from './time-zone.js'

export type Interval = 'hour' | 'day' | 'week'
export const INTERVALS: readonly Interval[] = ['hour', 'day', 'week']
export type ActivityGroupBy = 'action' | 'entity_type'
export const ACTIVITY_GROUP_BY: readonly ActivityGroupBy[] = ['action', 'entity_type']

/** A validated half-open range `[from, to)` in epoch ms, with its time zone. */
export interface RangeParams {
  from: number
  to: number
  tz: string
}

export interface SeriesParams extends RangeParams {
  interval: Interval
}

type Query = Record<string, unknown>

const MIN_BUCKET_MS: Record<Interval, number> = {
  hour: 3_600_000,
  day: 23 * 3_600_000, // a spring-forward day
  week: 7 * 86_400_000 - 3_600_000,
}

/**
 * The earliest instant a range may start at, 0001-01-01T00:00:00Z: the queries carry instants
 * as ISO 8601 text, which has no form PostgreSQL reads for years before 1. An explicit `from`
 * cannot be earlier (four-digit years only); a defaulted one (`to` minus the default range) can.
 */
const MIN_INSTANT = Date.parse('0001-01-01T00:00:00Z')

function bad(message: string, details?: unknown): never {
  throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_PARAMETER', { message, details })
}

function instant(name: string, value: unknown): number | undefined {
  if (value === undefined || value === '') return undefined
  const ms = typeof value === 'string' ? parseIsoTimestamp(value) : NaN
  if (!Number.isFinite(ms))
    throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_RANGE', {
      message: `${name} must be an ISO 8601 instant with a zone, e.g. 2026-03-01T00:00:00Z`,
      details: { parameter: name },
    })
  return ms
}

export function parseRange(q: Query, o: ResolvedAnalyticsOptions, now: number): RangeParams {
  const tz = parseTimeZone(q.tz)
  const to = instant('to', q.to) ?? now
  const from = instant('from', q.from) ?? to - o.defaultRangeMs
  if (from < MIN_INSTANT)
    throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_RANGE', {
      message: `from (without it, to minus ${Math.round(o.defaultRangeMs / 86_400_000)} days) must be 0001-01-01T00:00:00Z or later`,
      details: { parameter: 'from' },
    })
  if (from >= to)
    throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_RANGE', {
      message: 'from must be earlier than to (the range is [from, to))',
    })
  if (to - from > o.maxRangeMs)
    throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_RANGE', {
      message: `Range is longer than the maximum of ${Math.floor(o.maxRangeMs / 86_400_000)} days`,
      details: { maxRangeMs: o.maxRangeMs },
    })
  return { from, to, tz }
}

export function parseSeries(q: Query, o: ResolvedAnalyticsOptions, now: number): SeriesParams {
  const range = parseRange(q, o, now)
  const interval = q.interval === undefined || q.interval === '' ? 'day' : q.interval
  if (typeof interval !== 'string' || !INTERVALS.includes(interval as Interval))
    bad(`interval must be one of ${INTERVALS.join(', ')}`, { parameter: 'interval' })
  const buckets = Math.ceil((range.to - range.from) / MIN_BUCKET_MS[interval as Interval]) + 1
  if (buckets > o.maxBuckets)
    bad(
      `Too many ${interval} buckets (${buckets} > ${o.maxBuckets}); use a longer interval or a shorter range`,
      {
        parameter: 'interval',
        maxBuckets: o.maxBuckets,
      },
    )
  return { ...range, interval: interval as Interval }
}

export function parseGroupBy(value: unknown): ActivityGroupBy {
  if (value === undefined || value === '') return 'action'
  if (typeof value !== 'string' || !ACTIVITY_GROUP_BY.includes(value as ActivityGroupBy))
    bad(`groupBy must be one of ${ACTIVITY_GROUP_BY.join(', ')}`, { parameter: 'groupBy' })
  return value as ActivityGroupBy
}

/** A limit clamped to [1, maxLimit]; not a positive integer → 400. */
export function parseLimit(value: unknown, o: ResolvedAnalyticsOptions): number {
  if (value === undefined || value === '') return o.defaultLimit
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN
  if (!Number.isInteger(n) || n < 1) bad('limit must be a positive integer', { parameter: 'limit' })
  return Math.min(n, o.maxLimit)
}

/** Keyset position: the last item's timestamp (µs precision text) and message id. */
export type Cursor = KeysetCursor

export const encodeCursor = encodeKeysetCursor

export function parseCursor(value: unknown): Cursor | null {
  if (value === undefined || value === '') return null
  const c = typeof value === 'string' ? decodeKeysetCursor(value) : null
  if (!c) throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_CURSOR')
  return c
}

/** A boolean query flag: `true`/`false`/`1`/`0`; absent → `fallback`. */
export function parseFlag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback
  if (value === 'true' || value === '1' || value === true) return true
  if (value === 'false' || value === '0' || value === false) return false
  bad(`${name} must be true or false`, { parameter: name })
}

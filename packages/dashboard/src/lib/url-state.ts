// The view's shared state lives in the URL query, so a copied URL reproduces the view:
// from, to (inclusive calendar dates), tz, interval and project.
import { addDays, canonicalTimeZone, dateIn, daysBetween, isDate } from './time.js'

export type Interval = 'hour' | 'day' | 'week'
export const INTERVALS: readonly Interval[] = ['hour', 'day', 'week']

export interface ViewState {
  /** First day shown, YYYY-MM-DD in `tz`. */
  from: string
  /** Last day shown (inclusive), YYYY-MM-DD in `tz`. */
  to: string
  tz: string
  interval: Interval
  /** Project id (operator token only); absent for a project's own key. */
  project?: string
}

/** Default range: the last 30 days, today included. */
export const DEFAULT_DAYS = 30
/** Longest range the service accepts (ANALYTICS_DEFAULTS.maxRangeMs: 400 days). */
export const MAX_DAYS = 400
/** Hourly series over more days than this pass the service's 2000-bucket limit. */
export const MAX_HOURLY_DAYS = 80

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Reads the view state from a query string; anything missing or invalid falls back to a
 * default (last 30 days in `defaultTz`, daily). A reversed range is swapped, one longer than
 * the service allows is shortened from its start.
 */
export function parseViewState(search: string, now: number, defaultTz: string): ViewState {
  const q = new URLSearchParams(search)
  const tz = canonicalTimeZone(q.get('tz') ?? '') ?? defaultTz
  const today = dateIn(now, tz)
  let to = isDate(q.get('to') ?? '') ? q.get('to')! : today
  let from = isDate(q.get('from') ?? '') ? q.get('from')! : addDays(to, -(DEFAULT_DAYS - 1))
  if (daysBetween(from, to) < 0) [from, to] = [to, from]
  if (daysBetween(from, to) + 1 > MAX_DAYS) from = addDays(to, -(MAX_DAYS - 1))
  const i = q.get('interval')
  let interval: Interval = INTERVALS.includes(i as Interval) ? (i as Interval) : 'day'
  if (interval === 'hour' && daysBetween(from, to) + 1 > MAX_HOURLY_DAYS) interval = 'day'
  const p = q.get('project')
  return { from, to, tz, interval, ...(p && UUID.test(p) ? { project: p.toLowerCase() } : {}) }
}

/**
 * The state as a query string (with `?`, empty when nothing to say). Parameters that are not
 * part of the view state (page filters) are kept from `keep`.
 */
export function serializeViewState(state: ViewState, keep = ''): string {
  const q = new URLSearchParams(keep)
  q.set('from', state.from)
  q.set('to', state.to)
  q.set('tz', state.tz)
  if (state.interval !== 'day') q.set('interval', state.interval)
  else q.delete('interval')
  if (state.project) q.set('project', state.project)
  else q.delete('project')
  const s = q.toString()
  return s ? `?${s}` : ''
}

/** Query parameters for an API call: drops undefined, null and empty strings. */
export function apiQuery(
  params: Record<string, string | number | boolean | null | undefined>,
): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v))
  const s = q.toString()
  return s ? `?${s}` : ''
}

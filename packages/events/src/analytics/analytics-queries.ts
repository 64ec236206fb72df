import type { Database } from '@strata/pg'
import {
  resolveAnalyticsOptions,
  type AnalyticsOptions,
  type ResolvedAnalyticsOptions,
} from './options.js'
import {
  encodeCursor,
  type ActivityGroupBy,
  type Cursor,
  type RangeParams,
  type SeriesParams,
} from './params.js'
import { isoInZone } from './time-zone.js'

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
  /** How unique users are counted: always exact (COUNT DISTINCT), see the README. */
  uniqueUsersEstimator: 'exact'
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

// One UTC hour is "rolled" — answered from the hourly rollups — when it lies inside [from, to)
// and inside one output bucket. For whole-hour offsets that is every hour but the partial ones
// at the edges; in half-hour zones (Asia/Kolkata) the hour straddling each local midnight (or,
// for interval=hour, every hour) is not, and those are read from raw rows: exact either way.
const ALIGNED = (h: string) =>
  `date_trunc($4, ${h}, $5) = date_trunc($4, ${h} + interval '59 minutes 59.999999 seconds', $5)`
const ROLLED_BUCKET = `r.bucket >= $2 AND r.bucket <= $3::timestamptz - interval '1 hour' AND ${ALIGNED('r.bucket')}`
// The raw-row ranges: pieces of [from, to) in hours that are not rolled.
const RAW_RANGES = `(
  SELECT greatest(h, $2::timestamptz) AS a, least(h + interval '1 hour', $3::timestamptz) AS b
  FROM generate_series(date_trunc('hour', $2::timestamptz, 'UTC'), $3::timestamptz - interval '1 microsecond', interval '1 hour') h
  WHERE NOT (h >= $2 AND h + interval '1 hour' <= $3 AND ${ALIGNED('h')})
)`
// Every bucket start meeting [from, to): bucket lengths are multiples of 15 minutes in every zone
// (Nepal +05:45, Lord Howe's 30-minute DST), so a 15-minute grid plus the last instant hits all.
const BUCKETS = `SELECT DISTINCT date_trunc($3, g, $4) AS start FROM (
  SELECT generate_series($1::timestamptz, $2::timestamptz - interval '1 microsecond', interval '15 minutes') AS g
  UNION ALL SELECT $2::timestamptz - interval '1 microsecond') grid`

const US_TEXT = (col: string) =>
  `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

const iso = (ms: number) => new Date(ms).toISOString()
const num = (v: unknown) => Number(v ?? 0)
const ms = (v: unknown) => (v instanceof Date ? v.getTime() : Date.parse(String(v)))

/**
 * The analytics queries, all scoped to one project. Counts come from the hourly rollups the
 * writer keeps current in the ingest transaction (so they are exact and real-time), plus raw
 * rows only for the pieces of the range that are not whole rolled hours. Unique users are
 * exact `COUNT(DISTINCT)`s (see README: the cost centre of the logins summary).
 */
export class AnalyticsQueries {
  readonly #db: Database
  readonly options: ResolvedAnalyticsOptions

  /** `db` may be a read replica (DATABASE_READ_URL): every statement here is read-only. */
  constructor(db: Database, options: AnalyticsOptions = {}) {
    this.#db = db
    this.options = resolveAnalyticsOptions(options)
  }

  #q<R extends Record<string, unknown>>(label: string, sql: string, params: unknown[]) {
    return this.#db.query<R>(sql, params, {
      label: `analytics.${label}`,
      timeoutMs: this.options.statementTimeoutMs,
    })
  }

  #echo(p: RangeParams, interval?: string): RangeEcho {
    return {
      from: isoInZone(p.from, p.tz),
      to: isoInZone(p.to, p.tz),
      tz: p.tz,
      ...(interval ? { interval } : {}),
    }
  }

  async #buckets(p: SeriesParams): Promise<number[]> {
    const res = await this.#q<{ start: Date }>('buckets', `${BUCKETS} ORDER BY 1`, [
      iso(p.from),
      iso(p.to),
      p.interval,
      p.tz,
    ])
    return res.rows.map((r) => ms(r.start))
  }

  async logins(projectId: string, p: SeriesParams): Promise<LoginAnalytics> {
    const params = [projectId, iso(p.from), iso(p.to), p.interval, p.tz]
    const countsSql = `WITH agg AS (
      SELECT date_trunc($4, r.bucket, $5) AS start, r.method, r.device_type, r.browser, r.os, r.success, r.count AS n
      FROM login_rollups_hourly r
      WHERE r.project_id = $1 AND ${ROLLED_BUCKET}
      UNION ALL
      SELECT date_trunc($4, e.ts, $5), e.method, e.device_type, coalesce(e.browser, 'unknown'),
             coalesce(e.os, 'unknown'), e.success, 1
      FROM ${RAW_RANGES} x JOIN login_events e ON e.project_id = $1 AND e.ts >= x.a AND e.ts < x.b
    )
    SELECT CASE WHEN GROUPING(start) = 0 THEN 's' WHEN GROUPING(method) = 0 THEN 'm'
                WHEN GROUPING(device_type) = 0 THEN 'd' WHEN GROUPING(browser) = 0 THEN 'b' ELSE 'o' END AS kind,
           start, success, coalesce(method, device_type, browser, os) AS name, sum(n)::bigint AS n
    FROM agg GROUP BY GROUPING SETS ((start, success), (method), (device_type), (browser), (os))`
    const uniquesSql = `SELECT start, count(DISTINCT user_id)::bigint AS n FROM (
      SELECT date_trunc($4, ts, $5) AS start, user_id FROM login_events
      WHERE project_id = $1 AND ts >= $2 AND ts < $3) s
    GROUP BY GROUPING SETS ((start), ())`
    const [buckets, counts, uniques] = await Promise.all([
      this.#buckets(p),
      this.#q<{
        kind: string
        start: Date | null
        success: boolean | null
        name: string | null
        n: string
      }>('logins', countsSql, params),
      this.#q<{ start: Date | null; n: string }>('logins.uniques', uniquesSql, params),
    ])
    const series = new Map<number, LoginSeriesPoint>()
    for (const b of buckets)
      series.set(b, {
        start: isoInZone(b, p.tz),
        logins: 0,
        successes: 0,
        failures: 0,
        uniqueUsers: 0,
      })
    const out: LoginAnalytics = {
      range: this.#echo(p, p.interval),
      totals: { logins: 0, successes: 0, failures: 0, successRate: 0, uniqueUsers: 0 },
      byMethod: {},
      byDevice: {},
      byBrowser: {},
      byOs: {},
      series: [],
      uniqueUsersEstimator: 'exact',
    }
    const maps: Record<string, Record<string, number>> = {
      m: out.byMethod,
      d: out.byDevice,
      b: out.byBrowser,
      o: out.byOs,
    }
    for (const r of counts.rows) {
      const n = num(r.n)
      if (r.kind === 's') {
        const pt = series.get(ms(r.start))
        if (!pt) continue // cannot happen: every bucket meeting the range is listed
        pt.logins += n
        if (r.success) pt.successes += n
        else pt.failures += n
      } else maps[r.kind]![r.name!] = n
    }
    for (const r of uniques.rows) {
      if (r.start === null) out.totals.uniqueUsers = num(r.n)
      else {
        const pt = series.get(ms(r.start))
        if (pt) pt.uniqueUsers = num(r.n)
      }
    }
    out.series = [...series.values()]
    for (const pt of out.series) {
      out.totals.logins += pt.logins
      out.totals.successes += pt.successes
      out.totals.failures += pt.failures
    }
    out.totals.successRate = out.totals.logins ? out.totals.successes / out.totals.logins : 0
    for (const m of Object.values(maps)) sortMap(m)
    return out
  }

  async activity(
    projectId: string,
    p: SeriesParams,
    groupBy: ActivityGroupBy,
  ): Promise<ActivityAnalytics> {
    // The dimension comes from an allow-list and picks one of two fixed column names.
    const rollCol = groupBy === 'action' ? 'r.action' : "nullif(r.entity_type, '')"
    const rawCol = groupBy === 'action' ? 'e.action' : 'e.entity_type'
    const sql = `WITH agg AS (
      SELECT date_trunc($4, r.bucket, $5) AS start, ${rollCol} AS name, r.count AS n
      FROM activity_rollups_hourly r
      WHERE r.project_id = $1 AND ${ROLLED_BUCKET}
      UNION ALL
      SELECT date_trunc($4, e.ts, $5), ${rawCol}, 1
      FROM ${RAW_RANGES} x JOIN activity_logs e ON e.project_id = $1 AND e.ts >= x.a AND e.ts < x.b
    )
    SELECT GROUPING(start) AS g, start, name, sum(n)::bigint AS n
    FROM agg GROUP BY GROUPING SETS ((start), (name))`
    const [buckets, res] = await Promise.all([
      this.#buckets(p),
      this.#q<{ g: number; start: Date | null; name: string | null; n: string }>('activity', sql, [
        projectId,
        iso(p.from),
        iso(p.to),
        p.interval,
        p.tz,
      ]),
    ])
    const series = new Map<number, { start: string; activities: number }>()
    for (const b of buckets) series.set(b, { start: isoInZone(b, p.tz), activities: 0 })
    const groups: Record<string, number> = {}
    let total = 0
    for (const r of res.rows) {
      if (num(r.g) === 0) {
        const pt = series.get(ms(r.start))
        if (pt) pt.activities += num(r.n)
        total += num(r.n)
      } else groups[r.name ?? NO_ENTITY_TYPE] = num(r.n)
    }
    return {
      range: this.#echo(p, p.interval),
      groupBy,
      totals: { activities: total },
      groups: sortMap(groups),
      series: [...series.values()],
    }
  }

  /**
   * DAU/WAU/MAU per local day of the range: users seen (login, activity or identified event)
   * that day, in the 7 and 30 days ending that day. In UTC the set comes from
   * `user_activity_daily`; other zones need local days, built from raw rows (exact, slower).
   */
  async activeUsers(projectId: string, p: RangeParams): Promise<ActiveUsers> {
    const days = `SELECT ($2::timestamptz AT TIME ZONE $4)::date AS first,
                         (($3::timestamptz - interval '1 microsecond') AT TIME ZONE $4)::date AS last`
    const userDays =
      p.tz === 'UTC' || p.tz === 'Etc/UTC'
        ? `SELECT day, user_id FROM user_activity_daily, d
           WHERE project_id = $1 AND day > d.first - 30 AND day <= d.last`
        : `SELECT DISTINCT (ts AT TIME ZONE $4)::date AS day, user_id FROM (
             SELECT ts, user_id FROM login_events, b WHERE project_id = $1 AND ts >= b.lo AND ts < b.hi
             UNION ALL SELECT ts, user_id FROM activity_logs, b WHERE project_id = $1 AND ts >= b.lo AND ts < b.hi
             UNION ALL SELECT ts, user_id FROM events, b
               WHERE project_id = $1 AND user_id IS NOT NULL AND ts >= b.lo AND ts < b.hi) s`
    const sql = `WITH d AS (${days}),
      b AS (SELECT ((d.first - 29)::timestamp AT TIME ZONE $4) AS lo, ((d.last + 1)::timestamp AT TIME ZONE $4) AS hi FROM d),
      ud AS (${userDays}),
      series AS (SELECT g::date AS day FROM d, generate_series(d.first, d.last, interval '1 day') g)
    SELECT s.day::text AS day, (s.day::timestamp AT TIME ZONE $4) AS start,
      count(DISTINCT u.user_id) FILTER (WHERE u.day = s.day)::bigint AS dau,
      count(DISTINCT u.user_id) FILTER (WHERE u.day > s.day - 7)::bigint AS wau,
      count(DISTINCT u.user_id)::bigint AS mau
    FROM series s LEFT JOIN ud u ON u.day > s.day - 30 AND u.day <= s.day
    GROUP BY s.day ORDER BY s.day`
    const res = await this.#q<{ start: Date; dau: string; wau: string; mau: string }>(
      'active-users',
      sql,
      [projectId, iso(p.from), iso(p.to), p.tz],
    )
    const series = res.rows.map((r) => ({
      start: isoInZone(ms(r.start), p.tz),
      dau: num(r.dau),
      wau: num(r.wau),
      mau: num(r.mau),
    }))
    const last = series.at(-1) ?? { dau: 0, wau: 0, mau: 0 }
    return {
      range: this.#echo(p, 'day'),
      dau: last.dau,
      wau: last.wau,
      mau: last.mau,
      series,
      uniqueUsersEstimator: 'exact',
    }
  }

  /** Newest logins first, keyset-paginated on (ts, message_id). */
  async recentLogins(
    projectId: string,
    limit: number,
    cursor: Cursor | null,
  ): Promise<Page<RecentLogin>> {
    const res = await this.#q<Record<string, unknown>>(
      'recent-logins',
      `SELECT message_id, user_id, email, method, success, failure_reason, session_id, host(ip) AS ip,
              device_type, browser, os, user_agent, ${US_TEXT('ts')} AS ts_us, received_at
       FROM login_events WHERE project_id = $1
       ${cursor ? 'AND (ts, message_id) < ($3::timestamptz, $4::text)' : ''}
       ORDER BY ts DESC, message_id DESC LIMIT $2`,
      cursor ? [projectId, limit + 1, cursor.ts, cursor.id] : [projectId, limit + 1],
    )
    return page(res.rows, limit, (r) => ({
      messageId: String(r.message_id),
      userId: String(r.user_id),
      email: (r.email as string | null) ?? null,
      method: String(r.method),
      success: Boolean(r.success),
      failureReason: (r.failure_reason as string | null) ?? null,
      sessionId: (r.session_id as string | null) ?? null,
      ip: (r.ip as string | null) ?? null,
      deviceType: String(r.device_type),
      browser: (r.browser as string | null) ?? null,
      os: (r.os as string | null) ?? null,
      userAgent: (r.user_agent as string | null) ?? null,
      timestamp: usToIso(String(r.ts_us)),
      receivedAt: new Date(ms(r.received_at)).toISOString(),
    }))
  }

  /** One user's activities, newest first, keyset-paginated on (ts, message_id). */
  async userActivity(
    projectId: string,
    userId: string,
    limit: number,
    cursor: Cursor | null,
  ): Promise<Page<UserActivityItem>> {
    const res = await this.#q<Record<string, unknown>>(
      'user-activity',
      `SELECT message_id, user_id, session_id, action, entity_type, entity_id, metadata, ${US_TEXT('ts')} AS ts_us
       FROM activity_logs WHERE project_id = $1 AND user_id = $2
       ${cursor ? 'AND (ts, message_id) < ($4::timestamptz, $5::text)' : ''}
       ORDER BY ts DESC, message_id DESC LIMIT $3`,
      cursor
        ? [projectId, userId, limit + 1, cursor.ts, cursor.id]
        : [projectId, userId, limit + 1],
    )
    return page(res.rows, limit, (r) => ({
      messageId: String(r.message_id),
      userId: String(r.user_id),
      sessionId: (r.session_id as string | null) ?? null,
      action: String(r.action),
      entityType: (r.entity_type as string | null) ?? null,
      entityId: (r.entity_id as string | null) ?? null,
      metadata: r.metadata ?? null,
      timestamp: usToIso(String(r.ts_us)),
    }))
  }

  /**
   * Sessions: `active` now (not ended, not expired), and over sessions created in the range
   * the count, how many ended, and the average length (end, or last activity, minus creation).
   */
  async sessions(projectId: string, p: RangeParams, now: number): Promise<SessionAnalytics> {
    const res = await this.#q<{
      active: string
      created: string
      ended: string
      avg: string | null
    }>(
      'sessions',
      `SELECT
         (SELECT count(*) FROM user_sessions WHERE project_id = $1 AND ended_at IS NULL AND expires_at > $4)::bigint AS active,
         count(*)::bigint AS created, count(ended_at)::bigint AS ended,
         avg(extract(epoch FROM coalesce(ended_at, last_activity_at) - created_at))::float8 AS avg
       FROM user_sessions WHERE project_id = $1 AND created_at >= $2 AND created_at < $3`,
      [projectId, iso(p.from), iso(p.to), iso(now)],
    )
    const r = res.rows[0]!
    return {
      range: this.#echo(p),
      active: num(r.active),
      created: num(r.created),
      ended: num(r.ended),
      averageLengthSeconds: r.avg === null ? null : Math.round(Number(r.avg) * 1000) / 1000,
    }
  }
}

function usToIso(us: string): string {
  // Keep microseconds only when present (COPY-seeded rows); ms-precision rows read as usual.
  return us.endsWith('000Z') ? `${us.slice(0, 23)}Z` : us
}

function page<T>(
  rows: Record<string, unknown>[],
  limit: number,
  map: (r: Record<string, unknown>) => T,
): Page<T> {
  const more = rows.length > limit
  const kept = more ? rows.slice(0, limit) : rows
  const last = kept.at(-1)
  return {
    items: kept.map(map),
    nextCursor:
      more && last ? encodeCursor({ ts: String(last.ts_us), id: String(last.message_id) }) : null,
  }
}

/** Largest first, then by name: a stable order for the `{"name": count}` maps. */
function sortMap(m: Record<string, number>): Record<string, number> {
  const sorted = Object.entries(m).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
  for (const k of Object.keys(m)) delete m[k]
  for (const [k, v] of sorted) m[k] = v
  return m
}

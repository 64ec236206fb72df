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

// Parameters shared by the range queries: $1 project, $2 from, $3 to, $4 interval, $5 tz,
// $6 first whole UTC hour in the range, $7 end of the last whole hour ($6 = $7 when none).
//
// Range membership does not depend on the zone: totals and breakdowns sum the hourly rollups of
// [$6, $7) and read raw rows only for the partial hours [$2, $6) and [$7, $3). Series need each
// hour's local bucket: computed once per hour (a few thousand date_trunc calls, not one per
// rollup row). An hour is "aligned" when it lies in one bucket: every hour in whole-hour zones;
// in half-hour zones (Asia/Kolkata) the hour straddling each local midnight (for interval=hour,
// every hour) is not, and its rows are bucketed from raw rows. Exact either way.
const HOURS = `SELECT h, date_trunc($4, h, $5) AS start,
    date_trunc($4, h, $5) = date_trunc($4, h + interval '59 minutes 59.999999 seconds', $5) AS aligned
  FROM generate_series($6::timestamptz, $7::timestamptz - interval '1 hour', interval '1 hour') h`
// Raw pieces of the range: partial edge hours, and unaligned hours (series only).
const EDGES = `SELECT $2::timestamptz AS a, $6::timestamptz AS b UNION ALL SELECT $7, $3`
const SERIES_RAW = `${EDGES} UNION ALL SELECT h, h + interval '1 hour' FROM hours WHERE NOT aligned`
// Every bucket start meeting [from, to): bucket lengths are multiples of 15 minutes in every zone
// (Nepal +05:45, Lord Howe's 30-minute DST), so a 15-minute grid plus the last instant hits all.
const BUCKETS = `SELECT DISTINCT date_trunc($3, g, $4) AS start FROM (
  SELECT generate_series($1::timestamptz, $2::timestamptz - interval '1 microsecond', interval '15 minutes') AS g
  UNION ALL SELECT $2::timestamptz - interval '1 microsecond') grid`
// A raw row's user id (migration 0007), looked up per row: the raw pieces are a few hours of
// rows, and a correlated index lookup keeps that true even when statistics are stale (a new
// project looked like one row to the planner, which then joined every row of both tables).
const UID = (alias: string) =>
  `(SELECT i.uid FROM analytics_user_ids i WHERE i.project_id = $1 AND i.user_id = ${alias}.user_id)`

/** First whole UTC hour at or after `from`, and the end of the last whole hour before `to`. */
function wholeHours(from: number, to: number): [number, number] {
  const a = Math.ceil(from / 3_600_000) * 3_600_000
  const b = Math.floor(to / 3_600_000) * 3_600_000
  return a < b ? [a, b] : [from, from]
}

/**
 * The whole UTC days inside the whole hours [a, b), as [d1, d2); when there are none, [b, b) so
 * that hourly bitmaps cover all of [a, b).
 */
function wholeDays(a: number, b: number): [number, number] {
  const d1 = Math.ceil(a / 86_400_000) * 86_400_000
  const d2 = Math.floor(b / 86_400_000) * 86_400_000
  return d1 < d2 ? [d1, d2] : [b, b]
}

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

  // Aggregates run in a read-only transaction with JIT off: their plans cost enough to trigger
  // PostgreSQL's JIT, whose compilation took ~0.6 s of a 40 ms query here. SET LOCAL keeps the
  // setting off the pooled session (PgBouncer-safe), for three short extra round trips.
  #q<R extends Record<string, unknown>>(label: string, sql: string, params: unknown[]) {
    const opts = { label: `analytics.${label}`, timeoutMs: this.options.statementTimeoutMs }
    // Keyset lists are index lookups JIT never considers: one plain round trip.
    if (!this.#jit.has(label)) return this.#db.query<R>(sql, params, opts)
    return this.#db.transaction(
      async (tx) => {
        await tx.query('SET LOCAL jit = off', [], opts)
        return tx.query<R>(sql, params, opts)
      },
      { readOnly: true, label: opts.label, maxRetries: 0 },
    )
  }

  // Aggregates whose plan costs reach PostgreSQL's JIT threshold.
  readonly #jit = new Set([
    'logins.breakdown',
    'logins.series',
    'logins.uniques',
    'logins.series-uniques',
    'activity.groups',
    'activity.series',
    'active-users',
    'sessions',
  ])

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

  #rangeParams(projectId: string, p: SeriesParams): unknown[] {
    const [a, b] = wholeHours(p.from, p.to)
    return [projectId, iso(p.from), iso(p.to), p.interval, p.tz, iso(a), iso(b)]
  }

  /** `uniques: false` skips the raw-row unique-user count: the answer then reads rollups only. */
  async logins(
    projectId: string,
    p: SeriesParams,
    opts: { uniques?: boolean } = {},
  ): Promise<LoginAnalytics> {
    const withUniques = opts.uniques ?? true
    const params = this.#rangeParams(projectId, p)
    const breakdownSql = `WITH agg AS (
      SELECT r.method, r.device_type, r.browser, r.os, r.count AS n
      FROM login_rollups_hourly r WHERE r.project_id = $1 AND r.bucket >= $6 AND r.bucket < $7
      UNION ALL
      SELECT e.method, e.device_type, coalesce(e.browser, 'unknown'), coalesce(e.os, 'unknown'), 1
      FROM (${EDGES}) x JOIN login_events e ON e.project_id = $1 AND e.ts >= x.a AND e.ts < x.b
    )
    SELECT CASE WHEN GROUPING(method) = 0 THEN 'm' WHEN GROUPING(device_type) = 0 THEN 'd'
                WHEN GROUPING(browser) = 0 THEN 'b' ELSE 'o' END AS kind,
           coalesce(method, device_type, browser, os) AS name, sum(n)::bigint AS n
    FROM agg GROUP BY GROUPING SETS ((method), (device_type), (browser), (os))`
      .replaceAll('$6', '$4')
      .replaceAll('$7', '$5')
    const seriesSql = `WITH hours AS (${HOURS}),
      rolled AS (
        SELECT r.bucket, r.success, sum(r.count) AS n FROM login_rollups_hourly r
        WHERE r.project_id = $1 AND r.bucket >= $6 AND r.bucket < $7 GROUP BY 1, 2)
    SELECT 's' AS kind, start, success, NULL::text AS name, sum(n)::bigint AS n FROM (
      SELECT h.start, r.success, r.n FROM rolled r JOIN hours h ON h.h = r.bucket AND h.aligned
      UNION ALL
      SELECT date_trunc($4, e.ts, $5), e.success, 1
      FROM (${SERIES_RAW}) x JOIN login_events e ON e.project_id = $1 AND e.ts >= x.a AND e.ts < x.b
    ) s GROUP BY start, success`
    // Unique users: the OR of the user bitmaps of every piece of the range (see migration 0007),
    // popcounted per 8192-user chunk: daily bitmaps for whole UTC days, hourly ones for the other
    // whole hours, and bitmaps built from raw rows for the partial edge hours (and, in the
    // series, for hours straddling two local buckets).
    const [a, b] = wholeHours(p.from, p.to)
    const [d1, d2] = wholeDays(a, b)
    const totalUniquesSql = `WITH parts AS (
      SELECT chunk, bits FROM user_bitmaps
      WHERE project_id = $1 AND kind = 'l' AND grain = 'd' AND bucket >= $6 AND bucket < $7
      UNION ALL
      SELECT chunk, bits FROM user_bitmaps
      WHERE project_id = $1 AND kind = 'l' AND grain = 'h'
        AND ((bucket >= $4 AND bucket < $6) OR (bucket >= $7 AND bucket < $5))
      UNION ALL
      SELECT uid >> 13, strata_bitmap(array_agg(DISTINCT uid & 8191)) FROM (
        SELECT ${UID('e')} AS uid FROM (${EDGES.replaceAll('$6', '$4').replaceAll('$7', '$5')}) x
        JOIN login_events e ON e.project_id = $1 AND e.ts >= x.a AND e.ts < x.b) r
      WHERE uid IS NOT NULL GROUP BY 1)
    SELECT coalesce(sum(n), 0)::bigint AS n FROM (SELECT bit_count(bit_or(bits)) AS n FROM parts GROUP BY chunk) s`
    const seriesUniquesSql = `WITH hours AS (${HOURS}),
      days AS (
        SELECT d, date_trunc($4, d, $5) AS start
        FROM generate_series($8::timestamptz, $9::timestamptz - interval '1 day', interval '1 day') d
        WHERE date_trunc($4, d, $5) = date_trunc($4, d + interval '1 day' - interval '1 microsecond', $5)),
      hourly AS (
        SELECT h.h, h.start FROM hours h LEFT JOIN days d ON d.d = date_trunc('day', h.h, 'UTC')
        WHERE h.aligned AND d.d IS NULL),
      parts AS (
        SELECT d.start, b.chunk, b.bits FROM days d JOIN user_bitmaps b
          ON b.project_id = $1 AND b.kind = 'l' AND b.grain = 'd' AND b.bucket = d.d
        UNION ALL
        SELECT h.start, b.chunk, b.bits FROM hourly h JOIN user_bitmaps b
          ON b.project_id = $1 AND b.kind = 'l' AND b.grain = 'h' AND b.bucket = h.h
        UNION ALL
        SELECT start, uid >> 13, strata_bitmap(array_agg(DISTINCT uid & 8191)) FROM (
          SELECT date_trunc($4, e.ts, $5) AS start, ${UID('e')} AS uid FROM (${SERIES_RAW}) x
          JOIN login_events e ON e.project_id = $1 AND e.ts >= x.a AND e.ts < x.b) r
        WHERE uid IS NOT NULL GROUP BY 1, 2)
    SELECT start, sum(n)::bigint AS n
    FROM (SELECT start, bit_count(bit_or(bits)) AS n FROM parts GROUP BY start, chunk) s GROUP BY start`
    const [buckets, breakdown, seriesRows, totalUniques, seriesUniques] = await Promise.all([
      this.#buckets(p),
      this.#q<{
        kind: string
        start: Date | null
        success: boolean | null
        name: string | null
        n: string
      }>('logins.breakdown', breakdownSql, [params[0], params[1], params[2], params[5], params[6]]),
      this.#q<{
        kind: string
        start: Date | null
        success: boolean | null
        name: string | null
        n: string
      }>('logins.series', seriesSql, params),
      withUniques
        ? this.#q<{ n: string }>('logins.uniques', totalUniquesSql, [
            params[0],
            params[1],
            params[2],
            params[5],
            params[6],
            iso(d1),
            iso(d2),
          ])
        : { rows: [] as { n: string }[] },
      withUniques
        ? this.#q<{ start: Date; n: string }>('logins.series-uniques', seriesUniquesSql, [
            ...params,
            iso(d1),
            iso(d2),
          ])
        : { rows: [] as { start: Date; n: string }[] },
    ])
    const counts = { rows: [...seriesRows.rows, ...breakdown.rows] }
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
      uniqueUsersEstimator: withUniques ? 'exact' : 'skipped',
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
    out.totals.uniqueUsers = num(totalUniques.rows[0]?.n)
    for (const r of seriesUniques.rows) {
      const pt = series.get(ms(r.start))
      if (pt) pt.uniqueUsers = num(r.n)
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
    const params = this.#rangeParams(projectId, p)
    const groupsSql = `SELECT name, sum(n)::bigint AS n FROM (
      SELECT ${rollCol} AS name, r.count AS n
      FROM activity_rollups_hourly r WHERE r.project_id = $1 AND r.bucket >= $6 AND r.bucket < $7
      UNION ALL
      SELECT ${rawCol}, 1
      FROM (${EDGES}) x JOIN activity_logs e ON e.project_id = $1 AND e.ts >= x.a AND e.ts < x.b
    ) s GROUP BY name`
      .replaceAll('$6', '$4')
      .replaceAll('$7', '$5')
    const seriesSql = `WITH hours AS (${HOURS}),
      rolled AS (
        SELECT r.bucket, sum(r.count) AS n FROM activity_rollups_hourly r
        WHERE r.project_id = $1 AND r.bucket >= $6 AND r.bucket < $7 GROUP BY 1)
    SELECT start, sum(n)::bigint AS n FROM (
      SELECT h.start, r.n FROM rolled r JOIN hours h ON h.h = r.bucket AND h.aligned
      UNION ALL
      SELECT date_trunc($4, e.ts, $5), 1
      FROM (${SERIES_RAW}) x JOIN activity_logs e ON e.project_id = $1 AND e.ts >= x.a AND e.ts < x.b
    ) s GROUP BY start`
    const [buckets, groupRows, seriesRows] = await Promise.all([
      this.#buckets(p),
      this.#q<{ name: string | null; n: string }>('activity.groups', groupsSql, [
        params[0],
        params[1],
        params[2],
        params[5],
        params[6],
      ]),
      this.#q<{ start: Date; n: string }>('activity.series', seriesSql, params),
    ])
    const series = new Map<number, { start: string; activities: number }>()
    for (const b of buckets) series.set(b, { start: isoInZone(b, p.tz), activities: 0 })
    const groups: Record<string, number> = {}
    let total = 0
    for (const r of seriesRows.rows) {
      const pt = series.get(ms(r.start))
      if (pt) pt.activities += num(r.n)
      total += num(r.n)
    }
    for (const r of groupRows.rows) groups[r.name ?? NO_ENTITY_TYPE] = num(r.n)
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
   * that day, in the 7 and 30 days ending that day. Each local day's users are a bitmap per
   * 8192-user chunk: the daily bitmap in UTC, else the OR of its hourly bitmaps (raw rows for an
   * hour straddling local midnight, in zones with half-hour offsets). The 7- and 30-day ORs use
   * blocks of 7 (30) days: window [d-6, d] is the suffix OR of its first block and the prefix OR
   * of its last, so each day costs two ORs instead of 7 (30), with no raw rows read.
   */
  async activeUsers(projectId: string, p: RangeParams): Promise<ActiveUsers> {
    const utc = p.tz === 'UTC' || p.tz === 'Etc/UTC'
    const dayBits = utc
      ? `SELECT (bucket AT TIME ZONE 'UTC')::date AS day, chunk, bits FROM user_bitmaps, b
         WHERE project_id = $1 AND kind = 'a' AND grain = 'd' AND bucket >= b.lo AND bucket < b.hi`
      : `SELECT day, chunk, bit_or(bits) AS bits FROM (
           SELECT h.day, bm.chunk, bm.bits FROM hrs h JOIN user_bitmaps bm
             ON bm.project_id = $1 AND bm.kind = 'a' AND bm.grain = 'h' AND bm.bucket = h.h
           WHERE h.aligned
           UNION ALL
           SELECT day, uid >> 13, strata_bitmap(array_agg(DISTINCT uid & 8191)) FROM (
           SELECT (s.ts AT TIME ZONE $4)::date AS day, ${UID('s')} AS uid
           FROM hrs h CROSS JOIN LATERAL (
             SELECT ts, user_id FROM login_events
               WHERE project_id = $1 AND ts >= h.h AND ts < h.h + interval '1 hour'
             UNION ALL SELECT ts, user_id FROM activity_logs
               WHERE project_id = $1 AND ts >= h.h AND ts < h.h + interval '1 hour'
             UNION ALL SELECT ts, user_id FROM events
               WHERE project_id = $1 AND user_id IS NOT NULL AND ts >= h.h AND ts < h.h + interval '1 hour') s
           WHERE NOT h.aligned) r
           WHERE uid IS NOT NULL
           GROUP BY 1, 2) x
         GROUP BY day, chunk`
    const sql = `WITH d AS (
        SELECT ($2::timestamptz AT TIME ZONE $4)::date AS first,
               (($3::timestamptz - interval '1 microsecond') AT TIME ZONE $4)::date AS last),
      b AS (SELECT ((d.first - 29)::timestamp AT TIME ZONE $4) AS lo,
                   ((d.last + 1)::timestamp AT TIME ZONE $4) AS hi FROM d),
      hrs AS (
        SELECT h, (h AT TIME ZONE $4)::date AS day,
               (h AT TIME ZONE $4)::date = ((h + interval '59 minutes 59.999999 seconds') AT TIME ZONE $4)::date AS aligned
        FROM b, generate_series(date_trunc('hour', b.lo, 'UTC'), b.hi - interval '1 microsecond', interval '1 hour') h),
      day_bits AS (${dayBits}),
      days AS (SELECT g::date AS day FROM d, generate_series(d.first - 29, d.last, interval '1 day') g),
      chunks AS (SELECT DISTINCT chunk FROM day_bits),
      grid AS (
        SELECT days.day, days.day - date '2000-01-03' AS dn, c.chunk,
               coalesce(x.bits, repeat('0', 8192)::bit varying) AS bits
        FROM days CROSS JOIN chunks c LEFT JOIN day_bits x ON x.day = days.day AND x.chunk = c.chunk),
      w AS (
        SELECT day, dn, chunk, bits,
               bit_or(bits) OVER (PARTITION BY chunk, dn / 7 ORDER BY dn) AS p7,
               bit_or(bits) OVER (PARTITION BY chunk, dn / 7 ORDER BY dn DESC) AS s7,
               bit_or(bits) OVER (PARTITION BY chunk, dn / 30 ORDER BY dn) AS p30,
               bit_or(bits) OVER (PARTITION BY chunk, dn / 30 ORDER BY dn DESC) AS s30
        FROM grid),
      counts AS (
        SELECT c.day,
               sum(bit_count(c.bits)) AS dau,
               sum(bit_count(CASE WHEN (c.dn - 6) / 7 = c.dn / 7 THEN c.p7 ELSE w7.s7 | c.p7 END)) AS wau,
               sum(bit_count(CASE WHEN (c.dn - 29) / 30 = c.dn / 30 THEN c.p30 ELSE w30.s30 | c.p30 END)) AS mau
        FROM w c
        JOIN w w7 ON w7.chunk = c.chunk AND w7.dn = c.dn - 6
        JOIN w w30 ON w30.chunk = c.chunk AND w30.dn = c.dn - 29
        GROUP BY c.day)
    SELECT (days.day::timestamp AT TIME ZONE $4) AS start, coalesce(k.dau, 0)::bigint AS dau,
           coalesce(k.wau, 0)::bigint AS wau, coalesce(k.mau, 0)::bigint AS mau
    FROM days CROSS JOIN d LEFT JOIN counts k ON k.day = days.day
    WHERE days.day BETWEEN d.first AND d.last ORDER BY days.day`
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

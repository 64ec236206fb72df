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

import {
  NO_ENTITY_TYPE,
  type RangeEcho,
  type LoginSeriesPoint,
  type LoginAnalytics,
  type ActiveUsers,
  type ActivityAnalytics,
  type SessionAnalytics,
  type Page,
  type RecentLogin,
  type RecentLoginsFilter,
  type UserActivityItem,
} from './answers.js'
import {
  RANGE_CTES,
  EDGES,
  UNALIGNED,
  BUCKETS,
  uniquesCtes,
  RAW_ROWS,
  UID,
  wholeHours,
  wholeDays,
  US_TEXT,
  iso,
  num,
  ms,
} from './range-sql.js'

/**
 * The analytics queries, all scoped to one project. Counts come from the rollups the writer
 * keeps current in the ingest transaction (so they are exact and real-time), plus raw rows only
 * for the pieces of the range that are not whole rolled hours. Unique users are exact, from the
 * user bitmaps the writer keeps the same way (see README).
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
  // PostgreSQL's JIT, whose compilation takes far longer than the queries themselves run. SET
  // LOCAL keeps the setting off the pooled session (PgBouncer-safe), for three short extra round
  // trips.
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
  readonly #jit = new Set(['logins', 'activity', 'active-users', 'sessions'])

  #echo(p: RangeParams, interval?: string): RangeEcho {
    return {
      from: isoInZone(p.from, p.tz),
      to: isoInZone(p.to, p.tz),
      tz: p.tz,
      ...(interval ? { interval } : {}),
    }
  }

  /**
   * Parameters of the one-statement range queries: $1 project, $2 from, $3 to, $4 interval,
   * $5 tz, $6 first whole UTC hour, $7 end of the last whole hour, $8 first whole UTC day inside
   * them, $9 end of the last whole day ($8 = $9 = $7 when none).
   */
  #rangeParams(projectId: string, p: SeriesParams): unknown[] {
    const [a, b] = wholeHours(p.from, p.to)
    const [d1, d2] = wholeDays(a, b)
    return [projectId, iso(p.from), iso(p.to), p.interval, p.tz, iso(a), iso(b), iso(d1), iso(d2)]
  }

  /**
   * Everything in ONE statement (one snapshot, so totals, breakdowns and series always agree,
   * and one round trip): breakdowns from daily rollups for whole UTC days, hourly rollups for the
   * other whole hours and raw rows for the partial edge hours; the series from hourly counts
   * (raw rows for the edges and for hours straddling two local buckets); unique users from the
   * user bitmaps (see RANGE_CTES and migration 0007). `uniques: false` skips the bitmaps.
   */
  async logins(
    projectId: string,
    p: SeriesParams,
    opts: { uniques?: boolean } = {},
  ): Promise<LoginAnalytics> {
    const withUniques = opts.uniques ?? true
    const sql = `WITH ${RANGE_CTES},
      edge_rows AS (
        SELECT e.ts, e.user_id, e.success, e.method, e.device_type, e.browser, e.os
        FROM (${EDGES}) x CROSS JOIN LATERAL (${RAW_ROWS('login_events')}) e),
      unaligned_rows AS (
        SELECT e.ts, e.user_id, e.success FROM (${UNALIGNED}) x CROSS JOIN LATERAL (${RAW_ROWS('login_events')}) e),
      breakdown AS (
        SELECT method, device_type, browser, os, count AS n FROM login_rollups_daily
        WHERE project_id = $1 AND bucket >= $8 AND bucket < $9
        UNION ALL
        SELECT method, device_type, browser, os, count FROM login_rollups_hourly
        WHERE project_id = $1 AND ((bucket >= $6 AND bucket < $8) OR (bucket >= $9 AND bucket < $7))
        UNION ALL
        SELECT method, device_type, coalesce(browser, 'unknown'), coalesce(os, 'unknown'), 1 FROM edge_rows),
      series AS (
        SELECT h.start, c.success, c.count AS n FROM hours h JOIN login_counts_hourly c
          ON c.project_id = $1 AND c.bucket = h.h WHERE h.aligned
        UNION ALL SELECT date_trunc($4, ts, $5), success, 1 FROM edge_rows
        UNION ALL SELECT date_trunc($4, ts, $5), success, 1 FROM unaligned_rows),
      ${uniquesCtes('l', 'SELECT ts, user_id FROM edge_rows', 'SELECT ts, user_id FROM unaligned_rows')}
    SELECT CASE WHEN GROUPING(method) = 0 THEN 'm' WHEN GROUPING(device_type) = 0 THEN 'd'
                WHEN GROUPING(browser) = 0 THEN 'b' ELSE 'o' END AS kind,
           coalesce(method, device_type, browser, os) AS name, NULL::timestamptz AS start,
           NULL::boolean AS success, sum(n)::bigint AS n
    FROM breakdown GROUP BY GROUPING SETS ((method), (device_type), (browser), (os))
    UNION ALL SELECT 's', NULL, start, success, sum(n)::bigint FROM series GROUP BY start, success
    UNION ALL SELECT 'k', NULL, start, NULL, 0 FROM (${BUCKETS}) k
    UNION ALL SELECT 'u', NULL, NULL, NULL, n FROM total_uniques WHERE $10
    UNION ALL SELECT 'v', NULL, start, NULL, n FROM series_uniques WHERE $10`
    const res = await this.#q<{
      kind: string
      name: string | null
      start: Date | null
      success: boolean | null
      n: string
    }>('logins', sql, [...this.#rangeParams(projectId, p), withUniques])
    const series = new Map<number, LoginSeriesPoint>()
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
    // Bucket starts first (they come in any order), then what falls in them.
    for (const r of res.rows)
      if (r.kind === 'k')
        series.set(ms(r.start), {
          start: '',
          logins: 0,
          successes: 0,
          failures: 0,
          uniqueUsers: 0,
        })
    for (const r of res.rows) {
      const n = num(r.n)
      if (r.kind === 's' || r.kind === 'v') {
        const pt = series.get(ms(r.start))
        if (!pt) continue // cannot happen: every bucket meeting the range is listed
        if (r.kind === 'v') pt.uniqueUsers = n
        else {
          pt.logins += n
          if (r.success) pt.successes += n
          else pt.failures += n
        }
      } else if (r.kind === 'u') out.totals.uniqueUsers = n
      else if (r.kind !== 'k') maps[r.kind]![r.name!] = n
    }
    out.series = [...series.entries()]
      .sort((x, y) => x[0] - y[0])
      .map(([start, pt]) => ({ ...pt, start: isoInZone(start, p.tz) }))
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
    const rollCol = groupBy === 'action' ? 'action' : "nullif(entity_type, '')"
    const rawCol = groupBy === 'action' ? 'action' : 'entity_type'
    const sql = `WITH ${RANGE_CTES},
      edge_rows AS (
        SELECT e.ts, e.${rawCol} AS name FROM (${EDGES}) x CROSS JOIN LATERAL (${RAW_ROWS('activity_logs')}) e),
      groups AS (
        SELECT ${rollCol} AS name, count AS n FROM activity_rollups_daily
        WHERE project_id = $1 AND bucket >= $8 AND bucket < $9
        UNION ALL
        SELECT ${rollCol}, count FROM activity_rollups_hourly
        WHERE project_id = $1 AND ((bucket >= $6 AND bucket < $8) OR (bucket >= $9 AND bucket < $7))
        UNION ALL SELECT name, 1 FROM edge_rows),
      series AS (
        SELECT h.start, c.count AS n FROM hours h JOIN activity_counts_hourly c
          ON c.project_id = $1 AND c.bucket = h.h WHERE h.aligned
        UNION ALL SELECT date_trunc($4, ts, $5), 1 FROM edge_rows
        UNION ALL SELECT date_trunc($4, e.ts, $5), 1
          FROM (${UNALIGNED}) x CROSS JOIN LATERAL (${RAW_ROWS('activity_logs')}) e)
    SELECT 'g' AS kind, name, NULL::timestamptz AS start, sum(n)::bigint AS n FROM groups GROUP BY name
    UNION ALL SELECT 's', NULL, start, sum(n)::bigint FROM series GROUP BY start
    UNION ALL SELECT 'k', NULL, start, 0 FROM (${BUCKETS}) k`
    const res = await this.#q<{
      kind: string
      name: string | null
      start: Date | null
      n: string
    }>('activity', sql, this.#rangeParams(projectId, p))
    const series = new Map<number, number>()
    for (const r of res.rows) if (r.kind === 'k') series.set(ms(r.start), 0)
    const groups: Record<string, number> = {}
    let total = 0
    for (const r of res.rows) {
      if (r.kind === 's') {
        const at = ms(r.start)
        if (series.has(at)) series.set(at, series.get(at)! + num(r.n))
        total += num(r.n)
      } else if (r.kind === 'g') groups[r.name ?? NO_ENTITY_TYPE] = num(r.n)
    }
    return {
      range: this.#echo(p, p.interval),
      groupBy,
      totals: { activities: total },
      groups: sortMap(groups),
      series: [...series.entries()]
        .sort((x, y) => x[0] - y[0])
        .map(([start, activities]) => ({ start: isoInZone(start, p.tz), activities })),
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
           WHERE NOT h.aligned OFFSET 0) r
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
    filter: RecentLoginsFilter = {},
  ): Promise<Page<RecentLogin>> {
    // Filters are bound parameters; each has an index led by (project_id, <column>, ts DESC).
    const params: unknown[] = [projectId, limit + 1]
    const where: string[] = []
    const bind = (sql: string, ...values: unknown[]) => {
      where.push(sql.replace(/\?/g, () => `$${params.push(values.shift())}`))
    }
    if (filter.method !== undefined) bind('method = ?', filter.method)
    if (filter.success !== undefined) bind('success = ?', filter.success)
    if (filter.userId !== undefined) bind('user_id = ?', filter.userId)
    if (cursor) bind('(ts, message_id) < (?::timestamptz, ?::text)', cursor.ts, cursor.id)
    const res = await this.#q<Record<string, unknown>>(
      'recent-logins',
      `SELECT message_id, user_id, email, method, success, failure_reason, session_id, host(ip) AS ip,
              device_type, browser, os, user_agent, ${US_TEXT('ts')} AS ts_us, received_at
       FROM login_events WHERE project_id = $1 ${where.map((w) => `AND ${w}`).join(' ')}
       ORDER BY ts DESC, message_id DESC LIMIT $2`,
      params,
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

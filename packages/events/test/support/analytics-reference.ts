import { seededRandom } from '@strata/core'
import type { Database } from '@strata/pg'
import {
  isoInZone,
  type ActivityRow,
  type EventRow,
  type LoginRow,
  type SegmentRow,
} from '@strata/events'

/** Deterministic PRNG so every failing seed can be replayed. */
export const rng = seededRandom

export const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
/** Skewed pick: low indexes far more likely (a Zipf-ish power law). */
export const skewed = <T>(r: () => number, xs: readonly T[]): T =>
  xs[Math.min(xs.length - 1, Math.floor(xs.length * r() ** 3))]!

const METHODS = ['email', 'google', 'okta_saml', 'okta_oauth', 'github'] as const
const DEVICES = ['desktop', 'mobile', 'tablet', 'bot', 'unknown'] as const
const BROWSERS = ['Chrome', 'Safari', 'Firefox', null] as const
const OSES = ['Windows', 'macOS', 'iOS', 'Android', null] as const
const ACTIONS = ['view', 'create', 'update', 'delete', 'export'] as const
const ENTITIES = ['document', 'project', 'invoice', null] as const

/** Windows of data: around both 2026 DST changes in New York and London. */
export const WINDOWS: [number, number][] = [
  [Date.parse('2026-03-01T00:00:00Z'), Date.parse('2026-04-02T00:00:00Z')],
  [Date.parse('2026-10-20T00:00:00Z'), Date.parse('2026-11-08T00:00:00Z')],
]

export function randomTs(r: () => number): number {
  const [a, b] = pick(r, WINDOWS)
  // Some events on exact hour/day boundaries, where off-by-one bucketing would show.
  const t = a + Math.floor(r() * (b - a))
  const roll = r()
  if (roll < 0.05) return t - (t % 3_600_000)
  if (roll < 0.08) return t - (t % 1_800_000)
  return t
}

/** Random logins, activities and identified events of one project. */
export function randomRows(projectId: string, seed: number, n: number): EventRow[] {
  const r = rng(seed)
  const users = Array.from({ length: 60 }, (_, i) => `u${seed}_${i}`)
  const rows: EventRow[] = []
  for (let i = 0; i < n; i++) {
    const ts = randomTs(r)
    const userId = skewed(r, users)
    const kind = r()
    if (kind < 0.5) {
      const success = r() < 0.8
      const login: LoginRow = {
        kind: 'login',
        projectId,
        messageId: `m${seed}_${i}`,
        ts,
        receivedAt: ts,
        userId,
        email: `${userId}@example.com`,
        method: skewed(r, METHODS),
        success,
        failureReason: success ? null : 'bad_password',
        sessionId: success && r() < 0.5 ? `s${seed}_${i}` : null,
        ip: '203.0.113.7',
        deviceType: skewed(r, DEVICES),
        browser: pick(r, BROWSERS),
        os: pick(r, OSES),
        userAgent: null,
      }
      rows.push(login)
    } else if (kind < 0.9) {
      const activity: ActivityRow = {
        kind: 'activity',
        projectId,
        messageId: `a${seed}_${i}`,
        ts,
        receivedAt: ts,
        userId,
        sessionId: null,
        action: skewed(r, ACTIONS),
        entityType: pick(r, ENTITIES),
        entityId: String(Math.floor(r() * 100)),
        metadata: { i },
      }
      rows.push(activity)
    } else {
      const event: SegmentRow = {
        kind: 'event',
        projectId,
        messageId: `e${seed}_${i}`,
        ts,
        receivedAt: ts,
        type: 'track',
        name: 'Clicked',
        userId: r() < 0.7 ? `${userId}_seg` : null,
        anonymousId: 'anon',
        properties: {},
        context: {},
      }
      rows.push(event)
    }
  }
  return rows
}

const iso = (ms: number) => new Date(ms).toISOString()

/** The straightforward answers, straight from raw rows. */
export const naive = {
  async logins(
    db: Database,
    projectId: string,
    from: number,
    to: number,
    interval: string,
    tz: string,
  ) {
    const p = [projectId, iso(from), iso(to)]
    const where = 'project_id = $1 AND ts >= $2 AND ts < $3'
    const series = await db.query<{
      start: Date
      logins: string
      successes: string
      users: string
    }>(
      `SELECT date_trunc($4, ts, $5) AS start, count(*) AS logins, count(*) FILTER (WHERE success) AS successes,
              count(DISTINCT user_id) AS users
       FROM login_events WHERE ${where} GROUP BY 1 ORDER BY 1`,
      [...p, interval, tz],
    )
    const totals = await db.query<{ logins: string; successes: string; users: string }>(
      `SELECT count(*) AS logins, count(*) FILTER (WHERE success) AS successes, count(DISTINCT user_id) AS users
       FROM login_events WHERE ${where}`,
      p,
    )
    const by = async (col: string) => {
      const res = await db.query<{ k: string; n: string }>(
        `SELECT ${col} AS k, count(*) AS n FROM login_events WHERE ${where} GROUP BY 1`,
        p,
      )
      return Object.fromEntries(res.rows.map((x) => [x.k, Number(x.n)]))
    }
    return {
      totals: totals.rows[0]!,
      series: series.rows,
      byMethod: await by('method'),
      byDevice: await by('device_type'),
      byBrowser: await by("coalesce(browser, 'unknown')"),
      byOs: await by("coalesce(os, 'unknown')"),
    }
  },

  /** DAU, WAU and MAU of each local day in [from, to) from raw rows of all three tables. */
  async activeUsers(db: Database, projectId: string, from: number, to: number, tz: string) {
    const res = await db.query<{ d: Date; dau: string; wau: string; mau: string }>(
      `WITH u AS (
         SELECT ts, user_id FROM login_events WHERE project_id = $1
         UNION ALL SELECT ts, user_id FROM activity_logs WHERE project_id = $1
         UNION ALL SELECT ts, user_id FROM events WHERE project_id = $1 AND user_id IS NOT NULL),
       days AS (SELECT g::date AS d FROM generate_series(($2::timestamptz AT TIME ZONE $4)::date,
         (($3::timestamptz - interval '1 microsecond') AT TIME ZONE $4)::date, interval '1 day') g)
       SELECT (d::timestamp AT TIME ZONE $4) AS d,
         (SELECT count(DISTINCT user_id) FROM u WHERE ts >= (d::timestamp AT TIME ZONE $4) AND ts < ((d + 1)::timestamp AT TIME ZONE $4)) AS dau,
         (SELECT count(DISTINCT user_id) FROM u WHERE ts >= ((d - 6)::timestamp AT TIME ZONE $4) AND ts < ((d + 1)::timestamp AT TIME ZONE $4)) AS wau,
         (SELECT count(DISTINCT user_id) FROM u WHERE ts >= ((d - 29)::timestamp AT TIME ZONE $4) AND ts < ((d + 1)::timestamp AT TIME ZONE $4)) AS mau
       FROM days ORDER BY 1`,
      [projectId, new Date(from), new Date(to), tz],
    )
    return res.rows.map((w) => ({
      start: isoInZone(w.d.getTime(), tz),
      dau: Number(w.dau),
      wau: Number(w.wau),
      mau: Number(w.mau),
    }))
  },
}

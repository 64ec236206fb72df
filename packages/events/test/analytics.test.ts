import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  AnalyticsQueries,
  GroupCommitWriter,
  isoInZone,
  NO_ENTITY_TYPE,
  parseCursor,
  ProjectStore,
  type Interval,
} from '@strata/events'
import { naive, randomRows, rng, pick, WINDOWS } from './support/analytics-reference.js'
import { eventsTestDb, type EventsTestDb } from './support/events-db.js'

// Property-style exactness: every analytics answer (rollups + raw edges) must equal a
// straightforward SQL over raw rows, for random ranges, intervals and zones (DST and
// half-hour/45-minute offsets), over several random data sets.
const SEEDS = [11, 22, 33]
const ZONES = [
  'UTC',
  'America/New_York',
  'Europe/London',
  'Asia/Kolkata',
  'Asia/Kathmandu',
  'Australia/Lord_Howe',
]
const INTERVALS: Interval[] = ['hour', 'day', 'week']

let t: EventsTestDb
let q: AnalyticsQueries
const projects: string[] = []

beforeAll(async () => {
  t = await eventsTestDb('an')
  const store = new ProjectStore(t.db)
  const writer = new GroupCommitWriter(t.db)
  for (const seed of SEEDS) {
    const id = (await store.createProject(`p${seed}`)).project.id
    projects.push(id)
    const rows = randomRows(id, seed, 1500)
    // Several writes so rollups are upserted (count = count + n), as in production.
    for (let i = 0; i < rows.length; i += 400) await writer.write(rows.slice(i, i + 400))
  }
  await writer.close()
  // Logins only reference sessions; the sessions themselves are created with the admin key
  // when the user signs in. Here: one per referenced id, created at the login, 7 days long.
  await t.db.query(
    `INSERT INTO user_sessions (project_id, session_id, user_id, created_at, last_activity_at, expires_at)
     SELECT project_id, session_id, user_id, ts, ts, ts + interval '7 days' FROM login_events
     WHERE session_id IS NOT NULL ORDER BY ts ON CONFLICT DO NOTHING`,
  )
  q = new AnalyticsQueries(t.db)
}, 60_000)

afterAll(async () => {
  await t?.close()
})

function randomRange(r: () => number, interval: Interval): { from: number; to: number } {
  const [a, b] = pick(r, WINDOWS)
  const span = interval === 'hour' ? 5 * 86_400_000 : (b - a) * 1.1
  const from = a - 86_400_000 + Math.floor(r() * (b - a))
  // Half of the ranges on round instants (whole hours), half anywhere.
  const to = from + 1 + Math.floor(r() * span)
  return r() < 0.5
    ? { from, to }
    : { from: from - (from % 3_600_000), to: to - (to % 3_600_000) + 3_600_000 }
}

describe('logins equal raw SQL', () => {
  for (const [si, seed] of SEEDS.entries()) {
    it(`seed ${seed}: random ranges × intervals × zones`, async () => {
      const r = rng(seed * 7)
      const projectId = projects[si]!
      for (const tz of ZONES) {
        for (const interval of INTERVALS) {
          const { from, to } = randomRange(r, interval)
          const got = await q.logins(projectId, { from, to, tz, interval })
          const want = await naive.logins(t.db, projectId, from, to, interval, tz)
          const ctx = `${tz} ${interval} ${new Date(from).toISOString()}..${new Date(to).toISOString()}`
          expect(got.totals.logins, ctx).toBe(Number(want.totals.logins))
          expect(got.totals.successes, ctx).toBe(Number(want.totals.successes))
          expect(got.totals.failures, ctx).toBe(
            Number(want.totals.logins) - Number(want.totals.successes),
          )
          expect(got.totals.uniqueUsers, ctx).toBe(Number(want.totals.users))
          expect(got.byMethod, ctx).toEqual(want.byMethod)
          expect(got.byDevice, ctx).toEqual(want.byDevice)
          expect(got.byBrowser, ctx).toEqual(want.byBrowser)
          expect(got.byOs, ctx).toEqual(want.byOs)
          const nonEmpty = got.series.filter((s) => s.logins > 0)
          expect(nonEmpty, ctx).toEqual(
            want.series.map((w) => ({
              start: isoInZone(w.start.getTime(), tz),
              logins: Number(w.logins),
              successes: Number(w.successes),
              failures: Number(w.logins) - Number(w.successes),
              uniqueUsers: Number(w.users),
            })),
          )
          // Buckets are contiguous, increasing, and the first one holds `from`.
          const starts = got.series.map((s) => Date.parse(s.start))
          for (let i = 1; i < starts.length; i++)
            expect(starts[i]! > starts[i - 1]!, ctx).toBe(true)
          expect(starts[0]! <= from && (starts[1] ?? Infinity) > from, ctx).toBe(true)
          expect(starts.at(-1)! < to, ctx).toBe(true)
        }
      }
    })
  }
})

describe('logins without unique users', () => {
  it('uniques: false gives the same counts, reads no raw uniques and says so', async () => {
    const p = {
      from: Date.parse('2026-03-02T07:13:00Z'),
      to: Date.parse('2026-03-29T00:00:00Z'),
      tz: 'Europe/London',
      interval: 'day' as const,
    }
    const full = await q.logins(projects[0]!, p)
    const lean = await q.logins(projects[0]!, p, { uniques: false })
    expect(lean.uniqueUsersEstimator).toBe('skipped')
    expect(full.uniqueUsersEstimator).toBe('exact')
    expect(lean.totals.uniqueUsers).toBe(0)
    expect(full.totals.uniqueUsers).toBeGreaterThan(0)
    expect({ ...lean.totals, uniqueUsers: 1 }).toEqual({ ...full.totals, uniqueUsers: 1 })
    expect(lean.byMethod).toEqual(full.byMethod)
    expect(lean.series.map((s) => [s.start, s.logins, s.successes])).toEqual(
      full.series.map((s) => [s.start, s.logins, s.successes]),
    )
  })
})

describe('activity equals raw SQL', () => {
  it('groupBy action and entity_type, all zones', async () => {
    const r = rng(99)
    for (const [si, projectId] of projects.entries()) {
      for (const tz of ZONES) {
        const interval = pick(r, INTERVALS)
        const { from, to } = randomRange(r, interval)
        for (const groupBy of ['action', 'entity_type'] as const) {
          const got = await q.activity(projectId, { from, to, tz, interval }, groupBy)
          const col = groupBy === 'action' ? 'action' : `coalesce(entity_type, '${NO_ENTITY_TYPE}')`
          const want = await t.db.query<{ k: string; n: string }>(
            `SELECT ${col} AS k, count(*) AS n FROM activity_logs WHERE project_id = $1 AND ts >= $2 AND ts < $3 GROUP BY 1`,
            [projectId, new Date(from), new Date(to)],
          )
          const ctx = `seed ${SEEDS[si]} ${tz} ${interval} ${groupBy}`
          expect(got.groups, ctx).toEqual(
            Object.fromEntries(want.rows.map((w) => [w.k, Number(w.n)])),
          )
          const series = await t.db.query<{ start: Date; n: string }>(
            `SELECT date_trunc($4, ts, $5) AS start, count(*) AS n FROM activity_logs
             WHERE project_id = $1 AND ts >= $2 AND ts < $3 GROUP BY 1 ORDER BY 1`,
            [projectId, new Date(from), new Date(to), interval, tz],
          )
          expect(
            got.series.filter((s) => s.activities > 0),
            ctx,
          ).toEqual(
            series.rows.map((s) => ({
              start: isoInZone(s.start.getTime(), tz),
              activities: Number(s.n),
            })),
          )
        }
      }
    }
  })
})

describe('active users equal raw SQL', () => {
  it('DAU/WAU/MAU per local day, UTC (daily bitmaps) and other zones (hourly bitmaps, raw straddling hours)', async () => {
    const r = rng(5)
    for (const projectId of projects) {
      for (const tz of ZONES) {
        const [a, b] = pick(r, WINDOWS)
        const from = a + Math.floor(r() * (b - a))
        const to = from + Math.floor(r() * 12 * 86_400_000) + 1
        const got = await q.activeUsers(projectId, { from, to, tz })
        const expected = await naive.activeUsers(t.db, projectId, from, to, tz)
        expect(got.series, tz).toEqual(expected)
        expect([got.dau, got.wau, got.mau]).toEqual([
          expected.at(-1)!.dau,
          expected.at(-1)!.wau,
          expected.at(-1)!.mau,
        ])
      }
    }
  })
})

describe('DST and offsets', () => {
  it('labels New York days across spring-forward with their offsets (a 23-hour day)', async () => {
    const got = await q.logins(projects[0]!, {
      from: Date.parse('2026-03-07T05:00:00Z'),
      to: Date.parse('2026-03-10T04:00:00Z'),
      tz: 'America/New_York',
      interval: 'day',
    })
    expect(got.series.map((s) => s.start)).toEqual([
      '2026-03-07T00:00:00-05:00',
      '2026-03-08T00:00:00-05:00',
      '2026-03-09T00:00:00-04:00',
    ])
    expect(got.range.from).toBe('2026-03-07T00:00:00-05:00')
  })

  it('has 25 hourly buckets on the New York fall-back day, the repeated 1 am twice', async () => {
    const got = await q.logins(projects[0]!, {
      from: Date.parse('2026-11-01T04:00:00Z'),
      to: Date.parse('2026-11-02T05:00:00Z'),
      tz: 'America/New_York',
      interval: 'hour',
    })
    expect(got.series).toHaveLength(25)
    expect(got.series[1]!.start).toBe('2026-11-01T01:00:00-04:00')
    expect(got.series[2]!.start).toBe('2026-11-01T01:00:00-05:00')
  })

  it('starts Kolkata days at 18:30 UTC and London weeks on Monday local midnight', async () => {
    const k = await q.logins(projects[0]!, {
      from: Date.parse('2026-03-01T00:00:00Z'),
      to: Date.parse('2026-03-03T00:00:00Z'),
      tz: 'Asia/Kolkata',
      interval: 'day',
    })
    expect(k.series.map((s) => s.start)).toEqual([
      '2026-03-01T00:00:00+05:30',
      '2026-03-02T00:00:00+05:30',
      '2026-03-03T00:00:00+05:30',
    ])
    const l = await q.logins(projects[0]!, {
      from: Date.parse('2026-03-23T00:00:00Z'),
      to: Date.parse('2026-04-01T00:00:00Z'),
      tz: 'Europe/London',
      interval: 'week',
    })
    expect(l.series.map((s) => s.start)).toEqual([
      '2026-03-23T00:00:00Z'.replace('Z', '+00:00'),
      '2026-03-30T00:00:00+01:00',
    ])
  })
})

describe('lists and sessions', () => {
  it('pages one user’s activity by keyset, newest first, exactly the raw rows', async () => {
    const projectId = projects[1]!
    const top = await t.db.query<{ user_id: string }>(
      `SELECT user_id FROM activity_logs WHERE project_id = $1 GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`,
      [projectId],
    )
    const userId = top.rows[0]!.user_id
    const all = await t.db.query<{ message_id: string }>(
      `SELECT message_id FROM activity_logs WHERE project_id = $1 AND user_id = $2 ORDER BY ts DESC, message_id DESC`,
      [projectId, userId],
    )
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const pageRes = await q.userActivity(projectId, userId, 7, parseCursor(cursor ?? undefined))
      expect(pageRes.items.length).toBeLessThanOrEqual(7)
      seen.push(...pageRes.items.map((i) => i.messageId))
      cursor = pageRes.nextCursor
    } while (cursor)
    expect(seen).toEqual(all.rows.map((r) => r.message_id))
    expect(seen.length).toBeGreaterThan(14)
  })

  it('recent logins are the newest raw rows; other projects never appear', async () => {
    const projectId = projects[2]!
    const got = await q.recentLogins(projectId, 25, null)
    const want = await t.db.query<{ message_id: string }>(
      `SELECT message_id FROM login_events WHERE project_id = $1 ORDER BY ts DESC, message_id DESC LIMIT 25`,
      [projectId],
    )
    expect(got.items.map((i) => i.messageId)).toEqual(want.rows.map((r) => r.message_id))
    expect(got.items.every((i) => i.messageId.startsWith('m33_'))).toBe(true)
    expect(got.nextCursor).not.toBeNull()
    const next = await q.recentLogins(projectId, 5, parseCursor(got.nextCursor!))
    expect(Date.parse(next.items[0]!.timestamp)).toBeLessThanOrEqual(
      Date.parse(got.items.at(-1)!.timestamp),
    )
  })

  it('sessions: active now, created, ended and average length equal raw SQL', async () => {
    const projectId = projects[0]!
    await t.db.query(
      `UPDATE user_sessions SET ended_at = created_at + interval '17 minutes', last_activity_at = created_at + interval '9 minutes'
       WHERE project_id = $1 AND session_id LIKE '%1'`,
      [projectId],
    )
    const now = Date.parse('2026-03-20T00:00:00Z')
    const from = Date.parse('2026-03-05T00:00:00Z')
    const to = Date.parse('2026-03-25T00:00:00Z')
    const got = await q.sessions(projectId, { from, to, tz: 'UTC' }, now)
    const want = await t.db.query<{ active: string; created: string; ended: string; avg: number }>(
      `SELECT (SELECT count(*) FROM user_sessions WHERE project_id = $1 AND ended_at IS NULL AND expires_at > $4) AS active,
              count(*) AS created, count(ended_at) AS ended,
              avg(extract(epoch FROM coalesce(ended_at, last_activity_at) - created_at))::float8 AS avg
       FROM user_sessions WHERE project_id = $1 AND created_at >= $2 AND created_at < $3`,
      [projectId, new Date(from), new Date(to), new Date(now)],
    )
    const w = want.rows[0]!
    expect(got.active).toBe(Number(w.active))
    expect(got.active).toBeGreaterThan(0)
    expect(got.created).toBe(Number(w.created))
    expect(got.ended).toBe(Number(w.ended))
    expect(got.ended).toBeGreaterThan(0)
    expect(got.averageLengthSeconds).toBeCloseTo(w.avg, 2)
  })
})

// The analytics exactness checks of packages/events/test/analytics*.test.ts once more, at scale:
// 1.5 M rows (1 M logins, 500 k activities, about 25 000 users: several 8192-user bitmap
// chunks) seeded with COPY as `strata seed` does, then each answer compared with plain SQL over
// the raw rows of the same data. Rollup or bitmap bugs that only show with many buckets, chunks
// or rows per bucket show here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  AnalyticsQueries,
  isoInZone,
  NO_ENTITY_TYPE,
  ProjectStore,
  seedEvents,
} from '@strata/events'
import { naive } from '../../packages/events/test/support/analytics-reference.js'
import {
  countRows,
  eventsTestDb,
  type EventsTestDb,
} from '../../packages/events/test/support/events-db.js'

const LOGINS = 1_000_000
const ACTIVITIES = 500_000
const DAY = 86_400_000
const END = Date.parse('2026-11-20T13:17:00Z')
// Off whole hours on both ends, so the raw edge rows are part of every answer.
const FROM = END - 61 * DAY - 7_380_000
const TO = END - 9_660_000
const ZONES = ['UTC', 'Asia/Kolkata']

let t: EventsTestDb
let q: AnalyticsQueries
let projectId: string

beforeAll(async () => {
  t = await eventsTestDb('scale')
  projectId = (await new ProjectStore(t.db).createProject('scale')).project.id
  const seeded = await seedEvents(t.db, {
    projectId,
    logins: LOGINS,
    activities: ACTIVITIES,
    days: 90,
    end: END,
    seed: 2026,
  })
  console.info(`seeded ${LOGINS + ACTIVITIES} rows in ${(seeded.ms / 1000).toFixed(1)} s`)
  q = new AnalyticsQueries(t.db)
})

afterAll(async () => {
  await t?.close()
})

const rows = (r: { rows: { k: string; n: string }[] }) =>
  Object.fromEntries(r.rows.map((x) => [x.k, Number(x.n)]))

it('seeded over a million rows across several user-bitmap chunks', async () => {
  expect(await countRows(t.db, 'login_events', projectId)).toBe(LOGINS)
  expect(await countRows(t.db, 'activity_logs', projectId)).toBe(ACTIVITIES)
  const chunks = await t.db.query<{ n: string }>(
    'SELECT count(DISTINCT chunk) AS n FROM user_bitmaps WHERE project_id = $1',
    [projectId],
  )
  expect(Number(chunks.rows[0]!.n)).toBeGreaterThanOrEqual(3)
})

describe.each(ZONES)('%s', (tz) => {
  it('logins by day: totals, breakdowns and every day (with unique users) equal raw SQL', async () => {
    const got = await q.logins(projectId, { from: FROM, to: TO, tz, interval: 'day' })
    const want = await naive.logins(t.db, projectId, FROM, TO, 'day', tz)
    // Most of the million rows are in the range: the comparison is at scale, not near-empty.
    expect(Number(want.totals.logins)).toBeGreaterThan(600_000)
    expect(got.totals).toMatchObject({
      logins: Number(want.totals.logins),
      successes: Number(want.totals.successes),
      failures: Number(want.totals.logins) - Number(want.totals.successes),
      uniqueUsers: Number(want.totals.users),
    })
    expect(got.byMethod).toEqual(want.byMethod)
    expect(got.byDevice).toEqual(want.byDevice)
    expect(got.byBrowser).toEqual(want.byBrowser)
    expect(got.byOs).toEqual(want.byOs)
    expect(got.series.filter((s) => s.logins > 0)).toEqual(
      want.series.map((w) => ({
        start: isoInZone(w.start.getTime(), tz),
        logins: Number(w.logins),
        successes: Number(w.successes),
        failures: Number(w.logins) - Number(w.successes),
        uniqueUsers: Number(w.users),
      })),
    )
  })

  it('active users (DAU, WAU, MAU) of each local day equal raw SQL', async () => {
    const from = TO - 5 * DAY
    const got = await q.activeUsers(projectId, { from, to: TO, tz })
    const expected = await naive.activeUsers(t.db, projectId, from, TO, tz)
    expect(expected.length).toBeGreaterThanOrEqual(5)
    expect(got.series).toEqual(expected)
    expect([got.dau, got.wau, got.mau]).toEqual([
      expected.at(-1)!.dau,
      expected.at(-1)!.wau,
      expected.at(-1)!.mau,
    ])
  })

  it('activity breakdown (by action and by entity type) and its daily series equal raw SQL', async () => {
    const range = { from: FROM, to: TO, tz, interval: 'day' as const }
    const params = [projectId, new Date(FROM), new Date(TO)]
    const where = 'project_id = $1 AND ts >= $2 AND ts < $3'
    const series = await t.db.query<{ start: Date; n: string }>(
      `SELECT date_trunc('day', ts, $4) AS start, count(*) AS n FROM activity_logs
       WHERE ${where} GROUP BY 1 ORDER BY 1`,
      [...params, tz],
    )
    for (const [groupBy, col] of [
      ['action', 'action'],
      ['entity_type', `coalesce(entity_type, '${NO_ENTITY_TYPE}')`],
    ] as const) {
      const got = await q.activity(projectId, range, groupBy)
      const want = await t.db.query<{ k: string; n: string }>(
        `SELECT ${col} AS k, count(*) AS n FROM activity_logs WHERE ${where} GROUP BY 1`,
        params,
      )
      expect(got.groups, groupBy).toEqual(rows(want))
      expect(got.totals.activities).toBe(series.rows.reduce((s, r) => s + Number(r.n), 0))
      expect(got.series.filter((s) => s.activities > 0)).toEqual(
        series.rows.map((s) => ({
          start: isoInZone(s.start.getTime(), tz),
          activities: Number(s.n),
        })),
      )
    }
  })
})

it('sessions: created in the range (one per login that opened one), ended, active and average length equal raw SQL', async () => {
  const got = await q.sessions(projectId, { from: FROM, to: TO, tz: 'UTC' }, END)
  // Created: counted from the logins that reference a session, not from user_sessions itself.
  const logins = await t.db.query<{ n: string }>(
    `SELECT count(*) AS n FROM login_events
     WHERE project_id = $1 AND ts >= $2 AND ts < $3 AND session_id IS NOT NULL`,
    [projectId, new Date(FROM), new Date(TO)],
  )
  const raw = await t.db.query<{ ended: string; active: string; seconds: string }>(
    `SELECT count(*) FILTER (WHERE created_at >= $2 AND created_at < $3 AND ended_at IS NOT NULL) AS ended,
            count(*) FILTER (WHERE ended_at IS NULL AND expires_at > $4) AS active,
            sum(extract(epoch FROM coalesce(ended_at, last_activity_at))
                - extract(epoch FROM created_at)) FILTER (WHERE created_at >= $2 AND created_at < $3) AS seconds
     FROM user_sessions WHERE project_id = $1`,
    [projectId, new Date(FROM), new Date(TO), new Date(END)],
  )
  const created = Number(logins.rows[0]!.n)
  expect(created).toBeGreaterThan(100_000)
  expect(got.created).toBe(created)
  expect(got.ended).toBe(Number(raw.rows[0]!.ended))
  expect(got.active).toBe(Number(raw.rows[0]!.active))
  expect(got.averageLengthSeconds).toBeCloseTo(Number(raw.rows[0]!.seconds) / created, 2)
})

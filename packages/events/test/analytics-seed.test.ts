import { afterAll, beforeAll, expect, it } from 'vitest'
import { AnalyticsQueries, ProjectStore, seedEvents } from '@strata/events'
import { naive } from './support/analytics-reference.js'
import { countRows, eventsTestDb, type EventsTestDb } from './support/events-db.js'

// The COPY seeder must leave rollups and daily user sets consistent with the raw rows it wrote,
// added to what was there (seeded twice into one project here).
let t: EventsTestDb
let projectId: string
const END = Date.parse('2026-11-20T13:17:00Z')

beforeAll(async () => {
  t = await eventsTestDb('ansd')
  projectId = (await new ProjectStore(t.db).createProject('seed')).project.id
  await seedEvents(t.db, { projectId, logins: 4000, activities: 3000, days: 20, end: END, seed: 3 })
  await seedEvents(t.db, { projectId, logins: 1000, days: 40, end: END, seed: 4 })
}, 60_000)

afterAll(async () => {
  await t?.close()
})

it('writes the rows asked for, skewed, with sessions and failure bursts', async () => {
  expect(await countRows(t.db, 'login_events', projectId)).toBe(5000)
  expect(await countRows(t.db, 'activity_logs', projectId)).toBe(4000)
  expect(await countRows(t.db, 'user_sessions', projectId)).toBeGreaterThan(500)
  const top = await t.db.query<{ share: number }>(
    `SELECT (max(n)::float / sum(n)) AS share FROM (SELECT count(*) AS n FROM login_events WHERE project_id = $1 GROUP BY user_id) s`,
    [projectId],
  )
  // Zipf-ish: the heaviest user has far more than a uniform share (1/200).
  expect(top.rows[0]!.share).toBeGreaterThan(0.02)
})

it('analytics over the seeded data equal raw SQL', async () => {
  const q = new AnalyticsQueries(t.db)
  for (const tz of ['UTC', 'America/New_York', 'Asia/Kolkata']) {
    const from = END - 45 * 86_400_000
    const got = await q.logins(projectId, { from, to: END, tz, interval: 'day' })
    const want = await naive.logins(t.db, projectId, from, END, 'day', tz)
    expect(got.totals.logins).toBe(5000)
    expect(got.totals.successes).toBe(Number(want.totals.successes))
    expect(got.totals.uniqueUsers).toBe(Number(want.totals.users))
    expect(got.byMethod).toEqual(want.byMethod)
    expect(got.byBrowser).toEqual(want.byBrowser)
    const act = await q.activity(projectId, { from, to: END, tz, interval: 'week' }, 'entity_type')
    expect(act.totals.activities).toBe(4000)
  }
  const au = await q.activeUsers(projectId, { from: END - 5 * 86_400_000, to: END, tz: 'UTC' })
  const raw = await t.db.query<{ n: string }>(
    `SELECT count(DISTINCT user_id) AS n FROM (
       SELECT user_id, ts FROM login_events WHERE project_id = $1 UNION ALL SELECT user_id, ts FROM activity_logs WHERE project_id = $1) s
     WHERE ts >= date_trunc('day', $2::timestamptz, 'UTC') - interval '29 days' AND ts < date_trunc('day', $2::timestamptz, 'UTC') + interval '1 day'`,
    [projectId, new Date(END - 1)],
  )
  expect(au.mau).toBe(Number(raw.rows[0]!.n))
})

import { afterAll, beforeAll, expect, it } from 'vitest'
import {
  AnalyticsQueries,
  GroupCommitWriter,
  ProjectStore,
  seedEvents,
  type LoginRow,
} from '@strata/events'
import { naive } from './support/analytics-reference.js'
import { eventsTestDb, type EventsTestDb } from './support/events-db.js'

// Unique users come from per-hour/per-day user bitmaps split in 8192-user chunks (migration
// 0007). The property tests use few users (one chunk); these use tens of thousands, through
// both write paths (the writer, and COPY + strata_events_rebuild_user_bitmaps).
let t: EventsTestDb
let store: ProjectStore
const END = Date.parse('2026-11-20T13:17:00Z')
const DAY = 86_400_000
const ZONES = ['UTC', 'America/New_York', 'Asia/Kolkata']

beforeAll(async () => {
  t = await eventsTestDb('anbm')
  store = new ProjectStore(t.db)
}, 60_000)

afterAll(async () => {
  await t?.close()
})

async function expectExact(projectId: string, from: number, to: number): Promise<void> {
  const q = new AnalyticsQueries(t.db)
  for (const tz of ZONES) {
    const got = await q.logins(projectId, { from, to, tz, interval: 'day' })
    const want = await naive.logins(t.db, projectId, from, to, 'day', tz)
    const ctx = `tz ${tz}`
    expect(got.totals.uniqueUsers, ctx).toBe(Number(want.totals.users))
    const byStart = new Map(want.series.map((w) => [w.start.getTime(), Number(w.users)]))
    for (const pt of got.series)
      expect(pt.uniqueUsers, `${ctx} ${pt.start}`).toBe(byStart.get(Date.parse(pt.start)) ?? 0)
    const au = await q.activeUsers(projectId, { from: to - 3 * DAY, to, tz })
    const raw = await t.db.query<{ n: string }>(
      `SELECT count(DISTINCT user_id) AS n FROM (
         SELECT user_id, ts FROM login_events WHERE project_id = $1
         UNION ALL SELECT user_id, ts FROM activity_logs WHERE project_id = $1) s
       WHERE ts >= ((($2::timestamptz AT TIME ZONE $3)::date - 29)::timestamp AT TIME ZONE $3)
         AND ts < ((($2::timestamptz AT TIME ZONE $3)::date + 1)::timestamp AT TIME ZONE $3)`,
      [projectId, new Date(to - 1), tz],
    )
    expect(au.mau, ctx).toBe(Number(raw.rows[0]!.n))
  }
}

it('COPY-seeded data over 20 000 users (3 chunks) equals raw SQL; a rebuild changes nothing', async () => {
  const projectId = (await store.createProject('many')).project.id
  await seedEvents(t.db, {
    projectId,
    logins: 30_000,
    activities: 10_000,
    users: 20_000,
    days: 8,
    end: END,
    seed: 9,
  })
  const chunks = await t.db.query<{ n: string }>(
    'SELECT count(DISTINCT chunk) AS n FROM user_bitmaps WHERE project_id = $1',
    [projectId],
  )
  expect(Number(chunks.rows[0]!.n)).toBeGreaterThanOrEqual(2)
  await expectExact(projectId, END - 6.5 * DAY, END - 0.3 * DAY)
  // Idempotent: wiping the bitmaps and rebuilding gives the same answers (the migration's backfill).
  await t.db.query('DELETE FROM user_bitmaps WHERE project_id = $1', [projectId])
  await t.db.query('SELECT strata_events_rebuild_user_bitmaps($1, $2, $3)', [
    projectId,
    new Date(END - 9 * DAY),
    new Date(END),
  ])
  await t.db.query('SELECT strata_events_rebuild_user_bitmaps($1, $2, $3)', [
    projectId,
    new Date(END - 9 * DAY),
    new Date(END),
  ])
  await expectExact(projectId, END - 7 * DAY, END)
  // The derived rollups (daily, hourly counts) recomputed from the hourly ones: same answers.
  const q = new AnalyticsQueries(t.db)
  const range = { from: END - 6.5 * DAY, to: END - 0.3 * DAY, tz: 'UTC', interval: 'day' as const }
  const before = await q.logins(projectId, range)
  await t.db.query('DELETE FROM login_rollups_daily WHERE project_id = $1', [projectId])
  await t.db.query('SELECT strata_events_rebuild_derived_rollups($1, $2, $3)', [
    projectId,
    new Date(END - 9 * DAY),
    new Date(END),
  ])
  expect(await q.logins(projectId, range)).toEqual(before)
  expect(before.totals.logins).toBe(
    Number((await naive.logins(t.db, projectId, range.from, range.to, 'day', 'UTC')).totals.logins),
  )
})

it('concurrent writers give each new user one id, and unique counts stay exact', async () => {
  const projectId = (await store.createProject('writers')).project.id
  // 9 000 users: ids beyond the first 8192-user chunk. Two writers (as two instances) write
  // overlapping users at once, so both allocate ids for the same new users.
  const login = (i: number, u: number, w: number): LoginRow => {
    const ts = END - 2 * DAY + ((i * 7919) % (2 * DAY))
    return {
      kind: 'login',
      projectId,
      messageId: `w${w}-${i}`,
      ts,
      receivedAt: ts,
      userId: `user_${u}`,
      email: null,
      method: 'email',
      success: i % 5 !== 0,
      failureReason: null,
      sessionId: null,
      ip: null,
      deviceType: 'desktop',
      browser: null,
      os: null,
      userAgent: null,
    }
  }
  const writers = [new GroupCommitWriter(t.db), new GroupCommitWriter(t.db)]
  await Promise.all(
    writers.map(async (writer, w) => {
      const rows = Array.from({ length: 9000 }, (_, i) => login(i, (i * 13 + w * 4500) % 9000, w))
      for (let i = 0; i < rows.length; i += 300) await writer.write(rows.slice(i, i + 300))
    }),
  )
  await Promise.all(writers.map((w) => w.close()))
  const ids = await t.db.query<{ users: string; ids: string; max: number }>(
    `SELECT count(*) AS users, count(DISTINCT uid) AS ids, max(uid) AS max
     FROM analytics_user_ids WHERE project_id = $1`,
    [projectId],
  )
  expect(Number(ids.rows[0]!.users)).toBe(9000)
  expect(Number(ids.rows[0]!.ids)).toBe(9000)
  expect(ids.rows[0]!.max).toBeGreaterThanOrEqual(8192)
  await expectExact(projectId, END - 2.2 * DAY, END)
})

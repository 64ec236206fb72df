// Analytics: each endpoint's query (AnalyticsQueries, exactly what the routes run) uncached and
// through @strata/cache (L1, the routes' key scheme, serialized body), under C concurrent
// clients, against the same questions asked naively of the raw tables in the same run, on data
// seeded with COPY (seedEvents: N logins + N activities over D days). Every answer is checked
// against the raw one. Measured in-process (the query and cache costs alone), then over HTTP
// against the real `strata start` on the same database (routing, auth, cache, JSON send).
//
//   npm run bench -- analytics [--events 10000000] [--days 90] [--concurrency 16]
//     [--requests 480] [--baseline-requests 16] [--http-seconds 10] [--quick]
import { randomBytes } from 'node:crypto'
import type pg from 'pg'
import { createCache } from '@strata/cache'
import {
  AnalyticsQueries,
  eventsMigrations,
  isoInZone,
  ProjectStore,
  seedEvents,
  type Interval,
} from '@strata/events'
import { createDatabase, migrate, type Database } from '@strata/pg'
import { round, summarize, type Latency } from './measure.js'
import { createBenchDatabase } from './bench-database.js'
import { autocannon, freePort, startService, stopService } from './service-child.js'
import type { BenchArgs, BenchMetric, BenchResult } from './types.js'

const HOUR = 3_600_000
const DAY = 86_400_000

type R = pg.QueryResult

async function sequential<T>(thunks: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = []
  for (const t of thunks) out.push(await t())
  return out
}

async function underLoad(
  fn: (i: number) => Promise<unknown>,
  requests: number,
  concurrency: number,
): Promise<Latency> {
  const samples: number[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const i = next++
        const t0 = performance.now()
        await fn(i)
        samples.push(performance.now() - t0)
      }
    }),
  )
  return summarize(samples)
}

interface Endpoint {
  name: string
  /** The same question as an HTTP path (the operator token's `project=` is added). */
  http?: string
  ours: () => Promise<unknown>
  naive: () => Promise<unknown>
  /** Projects both answers onto what must be equal. */
  same: (ours: unknown, naive: unknown) => boolean
}

const iso = (ms: number) => new Date(ms).toISOString()
const eq = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)
const sortObj = (o: Record<string, number>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)))

export default async function run(args: BenchArgs = {}): Promise<BenchResult> {
  const opt = args.options ?? {}
  const quick = args.quick ?? false
  const events = Number(opt.events ?? (quick ? 200_000 : 1_000_000))
  const days = Number(opt.days ?? 90)
  const concurrency = Number(opt.concurrency ?? 16)
  const requests = Number(opt.requests ?? (quick ? 160 : 480))
  const cachedRequests = Number(opt['cached-requests'] ?? 20_000)
  const baselineRequests = Number(opt['baseline-requests'] ?? concurrency)
  const httpSeconds = Number(opt['http-seconds'] ?? (quick ? 3 : 10))
  // JIT off for ours and the baseline alike: compiling these plans costs more than running them.
  const bdb = await createBenchDatabase('analytics', ['jit = off'])
  let db: Database | undefined
  try {
    db = await createDatabase({
      url: bdb.url,
      pool: { max: concurrency, statementTimeoutMs: 600_000, acquireTimeoutMs: 600_000 },
    })
    await migrate(db, [eventsMigrations])
    const projectId = (await new ProjectStore(db).createProject('bench')).project.id
    // End on a whole hour in the past: a historical range, answered from rollups only.
    const end = Date.now() - (Date.now() % HOUR) - HOUR
    const t0 = performance.now()
    const seeded = await seedEvents(db, {
      projectId,
      logins: events,
      activities: events,
      days,
      end,
      seed: 7,
    })
    const seedMs = performance.now() - t0
    console.log(`seeded ${events} logins + ${events} activities in ${round(seedMs / 1000, 1)} s`)
    const size = await db.query<{ name: string; bytes: string }>(
      `SELECT 'database' AS name, pg_database_size(current_database())::text AS bytes
       UNION ALL SELECT 'raw (login_events + activity_logs + user_sessions, with indexes)',
         sum(pg_total_relation_size(c.oid))::text FROM pg_class c
         WHERE c.relkind = 'r' AND (c.relname LIKE 'login_events_p%' OR c.relname LIKE 'activity_logs_p%' OR c.relname = 'user_sessions')
       UNION ALL SELECT 'rollups (hourly logins + activities)',
         sum(pg_total_relation_size(c.oid))::text FROM pg_class c
         WHERE c.relname IN ('login_rollups_hourly', 'activity_rollups_hourly')
       UNION ALL SELECT 'user bitmaps (hourly + daily, logins + any activity) and user ids',
         sum(pg_total_relation_size(c.oid))::text FROM pg_class c
         WHERE c.relname IN ('user_bitmaps', 'analytics_user_ids')`,
    )
    const q = new AnalyticsQueries(db, { statementTimeoutMs: 600_000 })
    const from = end - days * DAY
    const series = (tz: string, interval: Interval, f = from) => ({
      from: f,
      to: end,
      tz,
      interval,
    })
    const topUser = (
      await db.query<{ user_id: string }>(
        `SELECT user_id FROM activity_logs WHERE project_id = $1 AND ts >= $2 GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`,
        [projectId, new Date(end - DAY)],
      )
    ).rows[0]!.user_id
    const P = [projectId, new Date(from), new Date(end)]
    const rawLogins = async (tz: string, interval: Interval, f = from) => {
      const p = [projectId, new Date(f), new Date(end)]
      const w = 'project_id = $1 AND ts >= $2 AND ts < $3'
      // One connection per client, one statement after another, like any naive handler.
      const [tot, ser, m, d, b, o] = (await sequential([
        () =>
          db!.query(
            `SELECT count(*)::int AS n, count(*) FILTER (WHERE success)::int AS s, count(DISTINCT user_id)::int AS u FROM login_events WHERE ${w}`,
            p,
          ),
        () =>
          db!.query(
            `SELECT date_trunc($4, ts, $5) AS start, count(*)::int AS n, count(*) FILTER (WHERE success)::int AS s, count(DISTINCT user_id)::int AS u
           FROM login_events WHERE ${w} GROUP BY 1 ORDER BY 1`,
            [...p, interval, tz],
          ),
        () =>
          db!.query(
            `SELECT method AS k, count(*)::int AS n FROM login_events WHERE ${w} GROUP BY 1`,
            p,
          ),
        () =>
          db!.query(
            `SELECT device_type AS k, count(*)::int AS n FROM login_events WHERE ${w} GROUP BY 1`,
            p,
          ),
        () =>
          db!.query(
            `SELECT coalesce(browser, 'unknown') AS k, count(*)::int AS n FROM login_events WHERE ${w} GROUP BY 1`,
            p,
          ),
        () =>
          db!.query(
            `SELECT coalesce(os, 'unknown') AS k, count(*)::int AS n FROM login_events WHERE ${w} GROUP BY 1`,
            p,
          ),
      ])) as [R, R, R, R, R, R]
      const map = (r: pg.QueryResult) => sortObj(Object.fromEntries(r.rows.map((x) => [x.k, x.n])))
      return {
        totals: tot.rows[0]!,
        series: ser.rows.map((r) => ({
          start: isoInZone(r.start.getTime(), tz),
          n: r.n,
          s: r.s,
          u: r.u,
        })),
        maps: [map(m), map(d), map(b), map(o)],
      }
    }
    const sameLogins = (a: unknown, b: unknown) => {
      const o = a as Awaited<ReturnType<typeof q.logins>>
      const r = b as Awaited<ReturnType<typeof rawLogins>>
      return (
        eq(
          [o.totals.logins, o.totals.successes, o.totals.uniqueUsers],
          [r.totals.n, r.totals.s, r.totals.u],
        ) &&
        eq([o.byMethod, o.byDevice, o.byBrowser, o.byOs].map(sortObj), r.maps) &&
        eq(
          o.series
            .filter((s) => s.logins > 0)
            .map((s) => ({ start: s.start, n: s.logins, s: s.successes, u: s.uniqueUsers })),
          r.series,
        )
      )
    }
    const endpoints: Endpoint[] = [
      {
        name: `logins ${days}d by day, UTC`,
        http: `/v1/analytics/logins?from=${iso(from)}&to=${iso(end)}&interval=day&tz=UTC`,
        ours: () => q.logins(projectId, series('UTC', 'day')),
        naive: () => rawLogins('UTC', 'day'),
        same: sameLogins,
      },
      {
        name: `logins ${days}d by day, UTC, uniques=false (rollups only)`,
        ours: () => q.logins(projectId, series('UTC', 'day'), { uniques: false }),
        naive: () => rawLogins('UTC', 'day'),
        same: (a, b) => {
          const o = a as Awaited<ReturnType<typeof q.logins>>
          const r = b as Awaited<ReturnType<typeof rawLogins>>
          return (
            eq([o.totals.logins, o.totals.successes], [r.totals.n, r.totals.s]) &&
            eq([o.byMethod, o.byDevice, o.byBrowser, o.byOs].map(sortObj), r.maps) &&
            eq(
              o.series.filter((s) => s.logins > 0).map((s) => [s.start, s.logins, s.successes]),
              r.series.map((s) => [s.start, s.n, s.s]),
            )
          )
        },
      },
      {
        name: `logins ${days}d by week, America/New_York`,
        http: `/v1/analytics/logins?from=${iso(from)}&to=${iso(end)}&interval=week&tz=America/New_York`,
        ours: () => q.logins(projectId, series('America/New_York', 'week')),
        naive: () => rawLogins('America/New_York', 'week'),
        same: sameLogins,
      },
      {
        name: 'logins 7d by hour, Asia/Kolkata',
        ours: () => q.logins(projectId, series('Asia/Kolkata', 'hour', end - 7 * DAY)),
        naive: () => rawLogins('Asia/Kolkata', 'hour', end - 7 * DAY),
        same: sameLogins,
      },
      {
        name: `activity ${days}d groupBy action`,
        http: `/v1/analytics/activity?from=${iso(from)}&to=${iso(end)}&interval=day&tz=UTC&groupBy=action`,
        ours: () => q.activity(projectId, series('UTC', 'day'), 'action'),
        naive: () =>
          db!.query<{ k: string; n: number }>(
            `SELECT action AS k, count(*)::int AS n FROM activity_logs WHERE project_id = $1 AND ts >= $2 AND ts < $3 GROUP BY 1`,
            P,
          ),
        same: (a, b) =>
          eq(
            sortObj((a as { groups: Record<string, number> }).groups),
            sortObj(Object.fromEntries((b as pg.QueryResult).rows.map((r) => [r.k, r.n]))),
          ),
      },
      ...['UTC', 'America/New_York'].map((tz): Endpoint => ({
        name: `active-users (DAU/WAU/MAU) 30d, ${tz}`,
        http: `/v1/analytics/active-users?from=${iso(end - 30 * DAY)}&to=${iso(end)}&tz=${tz}`,
        ours: () => q.activeUsers(projectId, { from: end - 30 * DAY, to: end, tz }),
        // DAU/WAU/MAU of the last local day of the range: whole days, as the endpoint defines them.
        naive: () =>
          db!.query(
            `WITH d AS (SELECT (($2::timestamptz - interval '1 microsecond') AT TIME ZONE $3)::date AS last),
                 u AS (SELECT ts, user_id FROM login_events, d WHERE project_id = $1 AND ts >= ((d.last - 29)::timestamp AT TIME ZONE $3)
                       UNION ALL SELECT ts, user_id FROM activity_logs, d WHERE project_id = $1 AND ts >= ((d.last - 29)::timestamp AT TIME ZONE $3))
               SELECT count(DISTINCT user_id) FILTER (WHERE ts >= (d.last::timestamp AT TIME ZONE $3))::int AS dau,
                      count(DISTINCT user_id) FILTER (WHERE ts >= ((d.last - 6)::timestamp AT TIME ZONE $3))::int AS wau,
                      count(DISTINCT user_id)::int AS mau
               FROM u, d WHERE ts < ((d.last + 1)::timestamp AT TIME ZONE $3)`,
            [projectId, new Date(end), tz],
          ),
        same: (a, b) => {
          const o = a as { dau: number; wau: number; mau: number }
          return eq([o.dau, o.wau, o.mau], Object.values((b as pg.QueryResult).rows[0]))
        },
      })),
      {
        name: 'recent-logins limit 50',
        http: '/v1/analytics/recent-logins?limit=50',
        ours: () => q.recentLogins(projectId, 50, null),
        naive: () =>
          db!.query(
            `SELECT message_id FROM login_events WHERE project_id = $1 ORDER BY ts DESC, message_id DESC LIMIT 50`,
            [projectId],
          ),
        same: (a, b) =>
          eq(
            (a as { items: { messageId: string }[] }).items.map((i) => i.messageId),
            (b as pg.QueryResult).rows.map((r) => r.message_id),
          ),
      },
      {
        name: 'users/:id/activity limit 50 (busiest user)',
        ours: () => q.userActivity(projectId, topUser, 50, null),
        naive: () =>
          db!.query(
            `SELECT message_id FROM activity_logs WHERE project_id = $1 AND user_id = $2 ORDER BY ts DESC, message_id DESC LIMIT 50`,
            [projectId, topUser],
          ),
        same: (a, b) =>
          eq(
            (a as { items: { messageId: string }[] }).items.map((i) => i.messageId),
            (b as pg.QueryResult).rows.map((r) => r.message_id),
          ),
      },
      {
        name: `sessions ${days}d`,
        http: `/v1/analytics/sessions?from=${iso(from)}&to=${iso(end)}&tz=UTC`,
        ours: () => q.sessions(projectId, { from, to: end, tz: 'UTC' }, end),
        naive: () =>
          db!.query(
            `SELECT count(*)::int AS created FROM user_sessions WHERE project_id = $1 AND created_at >= $2 AND created_at < $3`,
            P,
          ),
        same: (a, b) =>
          (a as { created: number }).created === (b as pg.QueryResult).rows[0].created,
      },
    ]

    const results: BenchMetric[] = [
      {
        metric: 'seed: rows written with COPY (logins + activities)',
        value: seeded.logins + seeded.activities,
        unit: 'rows',
      },
      { metric: 'seed: time', value: round(seedMs / 1000, 1), unit: 's' },
      ...size.rows.map((r) => ({
        metric: `size on disk: ${r.name}`,
        value: round(Number(r.bytes) / 2 ** 20, 1),
        unit: 'MiB',
      })),
    ]
    const cache = createCache({ namespace: `bench-analytics-${randomBytes(3).toString('hex')}` })
    try {
      for (const e of endpoints) {
        const [ours, naive] = await Promise.all([e.ours(), e.naive()])
        const exact = e.same(ours, naive)
        const unc = await underLoad(() => e.ours(), requests, concurrency)
        // The routes cache the serialized body under project + endpoint + parameters.
        const key = `${projectId}:${e.name}`
        const factory = async () => ({ body: JSON.stringify(await e.ours()) })
        await cache.getOrSet(key, factory, { ttl: '10m' })
        const hit = await underLoad(
          () => cache.getOrSet(key, factory, { ttl: '10m' }),
          cachedRequests,
          concurrency,
        )
        const rawLat = await underLoad(() => e.naive(), baselineRequests, concurrency)
        results.push(
          {
            metric: `${e.name}: p50 uncached`,
            value: round(unc.p50, 2),
            unit: 'ms',
            baseline: `raw-table SQL p50, c=${concurrency}`,
            baselineValue: round(rawLat.p50, 2),
            ratio: round(rawLat.p50 / unc.p50, 1),
            goal: '>= 100x faster than raw',
            pass: rawLat.p50 / unc.p50 >= 100,
          },
          {
            metric: `${e.name}: p99 uncached`,
            value: round(unc.p99, 2),
            unit: 'ms',
            baseline: `raw-table SQL p99, c=${concurrency}`,
            baselineValue: round(rawLat.p99, 2),
            ratio: round(rawLat.p99 / unc.p99, 1),
          },
          {
            metric: `${e.name}: p99 cached (L1 hit)`,
            value: round(hit.p99, 3),
            unit: 'ms',
            goal: '< 2 ms',
            pass: hit.p99 < 2,
          },
          {
            metric: `${e.name}: equals raw answer`,
            value: exact ? 1 : 0,
            unit: 'bool',
            pass: exact,
          },
        )
        console.log(
          `${e.name}: uncached p50 ${round(unc.p50, 2)} p99 ${round(unc.p99, 2)} ms | cached p99 ${round(hit.p99, 3)} ms | raw p50 ${round(rawLat.p50, 1)} p99 ${round(rawLat.p99, 1)} ms | exact ${exact}`,
        )
      }
    } finally {
      await cache.close()
    }
    // The same questions over HTTP, to the real service on this database (L1 cache, operator
    // token): the first request computes the answer, then `concurrency` clients hit the cache.
    const token = `bench-${randomBytes(12).toString('hex')}`
    const port = await freePort()
    // autocannon sends thousands of requests with one token: the per-key limit would answer them.
    const child = await startService(bdb.url, port, {
      STRATA_ADMIN_TOKEN: token,
      STRATA_RATE_LIMIT_ANALYTICS: 'off',
    })
    try {
      for (const e of endpoints) {
        if (!e.http) continue
        const path = `${e.http}${e.http.includes('?') ? '&' : '?'}project=${projectId}`
        const headers = { authorization: `Bearer ${token}` }
        const t1 = performance.now()
        const first = await fetch(`http://127.0.0.1:${port}${path}`, { headers })
        await first.arrayBuffer()
        const firstMs = performance.now() - t1
        if (!first.ok) throw new Error(`${path}: HTTP ${first.status}`)
        const run = await autocannon({
          url: `http://127.0.0.1:${port}${path}`,
          connections: concurrency,
          duration: httpSeconds,
          headers,
        })
        const ok = run['2xx'] > 0 && run.non2xx === 0 && run.errors === 0 && run.timeouts === 0
        results.push(
          {
            metric: `HTTP ${e.name}: first request (computed)`,
            value: round(firstMs, 1),
            unit: 'ms',
          },
          {
            metric: `HTTP ${e.name}: p99 cached, c=${concurrency}`,
            value: round(run.latency.p99, 2),
            unit: 'ms',
            goal: '< 2 ms',
            pass: ok && run.latency.p99 < 2,
          },
        )
        console.log(
          `HTTP ${e.name}: first ${round(firstMs, 1)} ms | cached p50 ${run.latency.p50} p99 ${run.latency.p99} ms, ${round(run.requests.average, 0)} req/s${ok ? '' : ' (ERRORS)'}`,
        )
      }
    } finally {
      await stopService(child)
    }
    return {
      name: 'analytics',
      params: {
        loginEvents: events,
        activities: events,
        days,
        concurrency,
        requests,
        cachedRequests,
        baselineRequests,
        httpSeconds,
      },
      results,
      notes: [
        'In-process: AnalyticsQueries (what the routes run) on a pool of `concurrency` connections; cached = @strata/cache L1 getOrSet of the serialized answer. The HTTP rows: the real `strata start` on the same database (L1 cache, operator token) loaded by autocannon from the bench process, all on one machine.',
        'Counts come from hourly rollups; unique users from per-hour/per-day user bitmaps (exact; raw rows only for partial edge hours and, in half-hour zones, hours straddling local midnight).',
        `Seeded with COPY in ${round(seedMs / 1000, 1)} s (${events} logins + ${events} activities over ${days} days).`,
      ],
    }
  } finally {
    await db?.close()
    await bdb.drop()
  }
}

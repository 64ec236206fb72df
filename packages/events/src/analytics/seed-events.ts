import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { seededRandom } from '@strata/core'
import type { Database } from '@strata/pg'
import type { PoolClient } from 'pg'
import { from as copyFrom } from 'pg-copy-streams'

export interface SeedOptions {
  projectId: string
  /** Login events to create. */
  logins: number
  /** Activity rows to create. @defaultValue same as logins */
  activities?: number
  /** Days the data spans, ending at `end`. @defaultValue 90 */
  days?: number
  /** End of the span (epoch ms, exclusive). @defaultValue now */
  end?: number
  /** Distinct users; their activity is Zipf-skewed. @defaultValue max(200, logins / 40) */
  users?: number
  /** PRNG seed: the same options give the same data. @defaultValue 1 */
  seed?: number
  /** Share of successful logins that open a session. @defaultValue 0.3 */
  sessionShare?: number
  /** Progress callback (rows written so far, of total). */
  onProgress?: (done: number, total: number) => void
}

export interface SeedResult {
  logins: number
  activities: number
  sessions: number
  ms: number
}

const HOUR = 3_600_000
const DAY = 86_400_000
const CHUNK = 20_000

/** Picks from weighted choices with one uniform draw. */
function weighted<T>(choices: [T, number][]): (u: number) => T {
  const total = choices.reduce((s, c) => s + c[1], 0)
  const cum: number[] = []
  let acc = 0
  for (const c of choices) cum.push((acc += c[1] / total))
  return (u) => {
    for (let i = 0; i < cum.length; i++) if (u < cum[i]!) return choices[i]![0]
    return choices.at(-1)![0]
  }
}

const METHOD = weighted([
  ['email', 45],
  ['google', 28],
  ['okta_saml', 12],
  ['okta_oauth', 8],
  ['github', 5],
  ['magic_link', 2],
])
// [device, browser, os, user agent]
const CLIENTS: [string, string | null, string | null, string | null][] = [
  [
    'desktop',
    'Chrome',
    'Windows',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  ],
  [
    'desktop',
    'Chrome',
    'macOS',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  ],
  [
    'desktop',
    'Safari',
    'macOS',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  ],
  [
    'desktop',
    'Firefox',
    'Windows',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0',
  ],
  [
    'desktop',
    'Microsoft Edge',
    'Windows',
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0',
  ],
  [
    'desktop',
    'Firefox',
    'Linux',
    'Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
  ],
  [
    'mobile',
    'Safari',
    'iOS',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  ],
  [
    'mobile',
    'Chrome',
    'Android',
    'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36',
  ],
  [
    'tablet',
    'Safari',
    'iPadOS',
    'Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  ],
  ['bot', null, null, 'python-requests/2.32.3'],
  ['unknown', null, null, null],
]
const CLIENT = weighted<number>([
  [0, 25],
  [1, 14],
  [2, 9],
  [3, 6],
  [4, 6],
  [5, 2],
  [6, 20],
  [7, 12],
  [8, 3],
  [9, 2],
  [10, 1],
])
const ACTION = weighted([
  ['view', 58],
  ['update', 18],
  ['create', 12],
  ['export', 5],
  ['share', 4],
  ['delete', 3],
])
const ENTITY = weighted<string | null>([
  ['document', 40],
  ['project', 20],
  ['dashboard', 15],
  ['invoice', 10],
  ['user', 8],
  [null, 7],
])
const FAILURE = weighted([
  ['invalid_password', 70],
  ['mfa_failed', 12],
  ['account_locked', 8],
  ['expired_token', 10],
])
// Share of a day's traffic per UTC hour: a working-day curve.
const HOUR_OF_DAY = weighted(
  Array.from({ length: 24 }, (_, h): [number, number] => [
    h,
    0.25 + Math.exp(-((h - 14) ** 2) / 18),
  ]),
)

const iso = (ms: number) => new Date(ms).toISOString()

async function copy(client: PoolClient, sql: string, lines: Iterable<string>): Promise<void> {
  async function* chunks() {
    let buf: string[] = []
    for (const l of lines) {
      buf.push(l)
      if (buf.length >= CHUNK) {
        yield buf.join('\n') + '\n'
        buf = []
        // Let other work (progress, timers) run between chunks.
        await new Promise((r) => setImmediate(r))
      }
    }
    if (buf.length) yield buf.join('\n') + '\n'
  }
  await pipeline(Readable.from(chunks()), client.query(noReadTimeout(copyFrom(sql))))
}

// pg's client-side read timeout (the pool's statement timeout + 5 s) also cuts bulk statements
// short; pg honours a per-query `query_timeout`, which its types do not declare.
const BULK_READ_TIMEOUT_MS = 24 * 3_600_000
function noReadTimeout<Q extends object>(query: Q): Q {
  Object.assign(query, { query_timeout: BULK_READ_TIMEOUT_MS })
  return query
}

/**
 * Generates realistic, skewed analytics data for one project straight through COPY (demos and
 * benchmarks): Zipf-skewed users, weighted methods/clients/actions, a working-day hourly curve
 * with quieter weekends, and failure bursts (credential-stuffing hours: many failed email logins
 * against a few accounts from bots). The rollups and user bitmaps the writer would keep are
 * built from the same rows and upserted in the same transaction, so analytics stay exact.
 * Seeded rows get no dedup keys (their message ids are unique by construction).
 */
export async function seedEvents(db: Database, o: SeedOptions): Promise<SeedResult> {
  const t0 = performance.now()
  const days = o.days ?? 90
  const end = o.end ?? Date.now()
  const start = end - days * DAY
  const nLogins = o.logins
  const nActs = o.activities ?? o.logins
  const nUsers = o.users ?? Math.max(200, Math.floor(nLogins / 40))
  const sessionShare = o.sessionShare ?? 0.3
  const r = seededRandom(o.seed ?? 1)
  const run = randomBytes(4).toString('hex')
  const p = o.projectId

  // Day weights: weekends at half traffic.
  const dayWeights: [number, number][] = []
  for (let d = 0; d < days; d++) {
    const dow = new Date(start + d * DAY).getUTCDay()
    dayWeights.push([d, dow === 0 || dow === 6 ? 0.5 : 1])
  }
  const DAY_PICK = weighted(dayWeights)
  const randomTs = () => {
    const dayStart = start - (start % DAY) + DAY_PICK(r()) * DAY
    const ts = dayStart + HOUR_OF_DAY(r()) * HOUR + Math.floor(r() * HOUR)
    return ts < start
      ? start + Math.floor(r() * HOUR)
      : ts >= end
        ? end - 1 - Math.floor(r() * HOUR)
        : ts
  }
  const user = () => Math.floor(nUsers * r() ** 3)
  // Credential-stuffing hours: about one per week.
  const bursts = Array.from({ length: Math.max(1, Math.floor(days / 7)) }, () => {
    const h = randomTs()
    return h - (h % HOUR)
  })
  const burstTargets = Array.from({ length: 20 }, () => user())

  const loginRoll = new Map<string, number>()
  const actRoll = new Map<string, number>()
  let sessionCount = 0
  const total = nLogins + nActs
  let done = 0
  const progress = () => {
    if (++done % 100_000 === 0) o.onProgress?.(done, total)
  }

  function* loginLines(): Generator<string> {
    for (let i = 0; i < nLogins; i++) {
      let ts: number, u: number, method: string, success: boolean, client: number
      if (r() < 0.03) {
        ts = bursts[Math.floor(r() * bursts.length)]! + Math.floor(r() * HOUR)
        u = burstTargets[Math.floor(r() * burstTargets.length)]!
        method = 'email'
        success = r() < 0.08
        client = r() < 0.7 ? 9 : 10
      } else {
        ts = randomTs()
        u = user()
        method = METHOD(r())
        success = r() < 0.93
        client = CLIENT(r())
      }
      const [device, browser, os, ua] = CLIENTS[client]!
      const userId = `user_${u}`
      const id = `seed-${run}-l${i}`
      const hour = ts - (ts % HOUR)
      const rk = `${hour}|${method}|${device}|${browser ?? 'unknown'}|${os ?? 'unknown'}|${success ? 't' : 'f'}`
      loginRoll.set(rk, (loginRoll.get(rk) ?? 0) + 1)
      const sessionId = success && r() < sessionShare ? `ss-${run}-${i}` : '\\N'
      const ip = `10.${u % 256}.${(u >> 8) % 256}.${Math.floor(r() * 254) + 1}`
      progress()
      yield `${p}\t${iso(ts)}\t${id}\t${userId}\t${userId}@example.com\t${method}\t${success ? 't' : 'f'}\t${success ? '\\N' : FAILURE(r())}\t${sessionId}\t${ip}\t${device}\t${browser ?? '\\N'}\t${os ?? '\\N'}\t${ua ?? '\\N'}\t${iso(ts + 150)}`
    }
  }

  function* activityLines(): Generator<string> {
    for (let i = 0; i < nActs; i++) {
      const ts = randomTs()
      const userId = `user_${user()}`
      const action = ACTION(r())
      const entity = ENTITY(r())
      const hour = ts - (ts % HOUR)
      const rk = `${hour}|${action}|${entity ?? ''}`
      actRoll.set(rk, (actRoll.get(rk) ?? 0) + 1)
      progress()
      yield `${p}\t${iso(ts)}\tseed-${run}-a${i}\t${userId}\t\\N\t${action}\t${entity ?? '\\N'}\t${entity ? Math.floor(r() * 5000) : '\\N'}\t\\N\t${iso(ts + 150)}`
    }
  }

  for (const table of ['login_events', 'activity_logs'])
    for (let m = start - (start % DAY); m < end + 31 * DAY; m += 28 * DAY)
      await db.query(
        'SELECT strata_events_ensure_partition($1, $2)',
        [table, iso(Math.min(m, end))],
        {
          label: 'seed',
        },
      )

  await db.withClient(
    async (client) => {
      await client.query('BEGIN')
      try {
        // A bulk load: its statements (COPY of millions of rows, the bitmap rebuild) outlast the
        // pool's per-statement timeout, which is meant for requests.
        await client.query('SET LOCAL statement_timeout = 0')
        await copy(
          client,
          `COPY login_events (project_id, ts, message_id, user_id, email, method, success, failure_reason, session_id, ip, device_type, browser, os, user_agent, received_at) FROM STDIN`,
          loginLines(),
        )
        await copy(
          client,
          `COPY activity_logs (project_id, ts, message_id, user_id, session_id, action, entity_type, entity_id, metadata, received_at) FROM STDIN`,
          activityLines(),
        )
        // Sessions of this run's logins that reference one, as if the admin key had created
        // them at sign-in (ingested logins never create sessions); lengths from a hash of the
        // id (1 min to 8 h, 40 % ended) so memory stays flat at 10 M logins.
        const opened = await client.query(
          noReadTimeout({
            text: `INSERT INTO user_sessions (project_id, session_id, user_id, created_at, last_activity_at, expires_at, ended_at, ip, user_agent, device_type, browser, os)
           SELECT project_id, session_id, user_id, ts, ts + len, ts + interval '7 days',
                  CASE WHEN h % 10 < 4 THEN ts + len END, ip, user_agent, device_type, browser, os
           FROM (SELECT *, abs(hashtext(session_id)) AS h,
                        make_interval(secs => 60 + abs(hashtext(session_id || 'len')) % 28800) AS len
                 FROM login_events
                 WHERE project_id = $1 AND ts >= $2 AND ts < $3 AND session_id LIKE $4) s
           -- In creation order, as the writer inserts them: the BRIN indexes on created_at and
           -- expires_at rely on that physical order.
           ORDER BY ts
           ON CONFLICT DO NOTHING`,
            values: [p, iso(start), iso(end), `ss-${run}-%`],
          }),
        )
        sessionCount = opened.rowCount ?? 0
        // Rollups: COPY into temporary tables, then add to what is there.
        await client.query(`CREATE TEMP TABLE seed_l (LIKE login_rollups_hourly) ON COMMIT DROP;
          CREATE TEMP TABLE seed_a (LIKE activity_rollups_hourly) ON COMMIT DROP`)
        await copy(
          client,
          'COPY seed_l (project_id, bucket, method, device_type, browser, os, success, count) FROM STDIN',
          (function* () {
            for (const [k, n] of loginRoll) {
              const [h, ...rest] = k.split('|')
              yield `${p}\t${iso(Number(h))}\t${rest.join('\t')}\t${n}`
            }
          })(),
        )
        await copy(
          client,
          'COPY seed_a (project_id, bucket, action, entity_type, count) FROM STDIN',
          (function* () {
            for (const [k, n] of actRoll) {
              const [h, action, entity] = k.split('|')
              yield `${p}\t${iso(Number(h))}\t${action}\t${entity}\t${n}`
            }
          })(),
        )
        await client.query(
          noReadTimeout({
            text: `INSERT INTO login_rollups_hourly AS r SELECT * FROM seed_l ORDER BY 1, 2, 3, 4, 5, 6, 7
          ON CONFLICT (project_id, bucket, method, device_type, browser, os, success) DO UPDATE SET count = r.count + excluded.count`,
          }),
        )
        await client.query(
          noReadTimeout({
            text: `INSERT INTO activity_rollups_hourly AS r SELECT * FROM seed_a ORDER BY 1, 2, 3, 4
          ON CONFLICT (project_id, bucket, action, entity_type) DO UPDATE SET count = r.count + excluded.count`,
          }),
        )
        // Daily rollups and hourly series counts of exactly the rollups just added.
        await client.query(
          noReadTimeout({
            text: "SELECT strata_events_derive_rollups($1, '-infinity', 'infinity', 'seed')",
            values: [p],
          }),
        )
        // Sets: recomputing them from every raw row of the span is idempotent and exact.
        await client.query(
          noReadTimeout({
            text: 'SELECT strata_events_rebuild_user_bitmaps($1, $2, $3)',
            values: [p, iso(start), iso(end)],
          }),
        )
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined)
        throw err
      }
    },
    { label: 'seed' },
  )
  for (const t of [
    'login_events',
    'activity_logs',
    'user_sessions',
    'login_rollups_hourly',
    'activity_rollups_hourly',
    'login_rollups_daily',
    'activity_rollups_daily',
    'login_counts_hourly',
    'activity_counts_hourly',
    'analytics_user_ids',
    'user_bitmaps',
  ])
    await db.query(`ANALYZE ${t}`, [], { label: 'seed' })
  return {
    logins: nLogins,
    activities: nActs,
    sessions: sessionCount,
    ms: performance.now() - t0,
  }
}

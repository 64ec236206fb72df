import type { ActivityRow, EventRow, LoginRow, SegmentRow } from '../types.js'

/**
 * Builds ONE statement of data-modifying CTEs (`WITH a AS (INSERT ...), b AS (INSERT ...)
 * SELECT 1`) for everything a flush writes: on a busy two-core machine each round trip costs
 * milliseconds, and a flush's fixed cost is what bounds single-event throughput. Postgres runs
 * every data-modifying CTE exactly once, in one snapshot, atomically.
 *
 * Every event value travels as a bound parameter (rows as one JSON parameter each), never in
 * the SQL text: statement text is what Postgres logs on an error and shows in
 * pg_stat_activity, and it would carry every project's personal data in the batch.
 */
export class FlushStatement {
  #parts: [name: string, sql: string][] = []
  #params: unknown[] = []
  #dedup = false

  /** Appends a parameter and returns its placeholder with a cast. */
  #p(value: unknown, cast: string): string {
    this.#params.push(value)
    return `$${this.#params.length}::${cast}`
  }

  /**
   * Rows as ONE json parameter read with json_to_recordset: JSON.stringify is native and fast,
   * where pg's array serialisation escapes every element in JavaScript.
   */
  #records<R>(rows: R[], fields: [name: string, type: string, get: (r: R) => unknown][]): string {
    const objects = rows.map((r) => {
      const o: Record<string, unknown> = {}
      for (const [name, , get] of fields) o[name] = get(r)
      return o
    })
    const ref = this.#p(JSON.stringify(objects), 'json')
    return `json_to_recordset(${ref}) AS x(${fields.map(([n, t]) => `${n} ${t}`).join(', ')})`
  }

  #push(sql: string, name = `w${this.#parts.length}`): void {
    this.#parts.push([name, sql])
  }

  get empty(): boolean {
    return this.#parts.length === 0
  }

  /** The statement text (placeholders only) and its parameters, for `client.query(sql, params)`. */
  build(): { sql: string; params: unknown[] } {
    const ctes = this.#parts.map(([name, sql]) => `${name} AS (${sql})`).join(',\n')
    // Reading the dedup CTE from the main query runs it before the other CTEs (those run to
    // completion after the main query): a repeat fails the statement before anything else is
    // written, and keys are locked first, as on the COPY path.
    const main = this.#dedup ? 'SELECT count(*) FROM dedup' : 'SELECT 1'
    return { sql: `WITH ${ctes}\n${main}`, params: this.#params }
  }

  /**
   * Dedup keys with NO `ON CONFLICT`, for the optimistic one-round-trip flush: a repeat fails
   * the statement with unique_violation and the flush reruns on the conflict-safe path.
   */
  dedup(rows: EventRow[]): this {
    if (!rows.length) return this
    this.#dedup = true
    this.#push(
      `INSERT INTO event_dedup (project_id, message_id, ts)
       SELECT * FROM ${this.#records(rows, [
         ['p', 'uuid', (r) => r.projectId],
         ['m', 'text', (r) => r.messageId],
         ['t', 'timestamptz', (r) => iso(r.ts)],
       ])}
       RETURNING 1`,
      'dedup',
    )
    return this
  }

  logins(rows: LoginRow[]): this {
    if (!rows.length) return this
    this.#push(
      `INSERT INTO login_events (project_id, ts, message_id, user_id, email, method, success, failure_reason, session_id, ip, device_type, browser, os, user_agent, received_at)
       SELECT * FROM ${this.#records(rows, [
         ['project_id', 'uuid', (r) => r.projectId],
         ['ts', 'timestamptz', (r) => iso(r.ts)],
         ['message_id', 'text', (r) => r.messageId],
         ['user_id', 'text', (r) => r.userId],
         ['email', 'text', (r) => r.email],
         ['method', 'text', (r) => r.method],
         ['success', 'boolean', (r) => r.success],
         ['failure_reason', 'text', (r) => r.failureReason],
         ['session_id', 'text', (r) => r.sessionId],
         ['ip', 'inet', (r) => r.ip],
         ['device_type', 'text', (r) => r.deviceType],
         ['browser', 'text', (r) => r.browser],
         ['os', 'text', (r) => r.os],
         ['user_agent', 'text', (r) => r.userAgent],
         ['received_at', 'timestamptz', (r) => iso(r.receivedAt)],
       ])}`,
    )
    return this
  }

  activities(rows: ActivityRow[]): this {
    if (!rows.length) return this
    this.#push(
      `INSERT INTO activity_logs (project_id, ts, message_id, user_id, session_id, action, entity_type, entity_id, metadata, received_at)
       SELECT * FROM ${this.#records(rows, [
         ['project_id', 'uuid', (r) => r.projectId],
         ['ts', 'timestamptz', (r) => iso(r.ts)],
         ['message_id', 'text', (r) => r.messageId],
         ['user_id', 'text', (r) => r.userId],
         ['session_id', 'text', (r) => r.sessionId],
         ['action', 'text', (r) => r.action],
         ['entity_type', 'text', (r) => r.entityType],
         ['entity_id', 'text', (r) => r.entityId],
         ['metadata', 'jsonb', (r) => r.metadata ?? null],
         ['received_at', 'timestamptz', (r) => iso(r.receivedAt)],
       ])}`,
    )
    return this
  }

  events(rows: SegmentRow[]): this {
    if (!rows.length) return this
    this.#push(
      `INSERT INTO events (project_id, ts, message_id, type, name, user_id, anonymous_id, properties, context, received_at)
       SELECT * FROM ${this.#records(rows, [
         ['project_id', 'uuid', (r) => r.projectId],
         ['ts', 'timestamptz', (r) => iso(r.ts)],
         ['message_id', 'text', (r) => r.messageId],
         ['type', 'text', (r) => r.type],
         ['name', 'text', (r) => r.name],
         ['user_id', 'text', (r) => r.userId],
         ['anonymous_id', 'text', (r) => r.anonymousId],
         ['properties', 'jsonb', (r) => r.properties ?? null],
         ['context', 'jsonb', (r) => r.context ?? null],
         ['received_at', 'timestamptz', (r) => iso(r.receivedAt)],
       ])}`,
    )
    return this
  }

  /**
   * Rollups of the fresh rows, aggregated here and sorted so upserts lock in one order: hourly
   * and daily (UTC) by every dimension, and per-hour counts for the series (migration 0009).
   */
  rollups(logins: LoginRow[], activities: ActivityRow[], events: SegmentRow[]): this {
    const ok = (r: LoginRow) => (r.success ? 't' : 'f')
    if (logins.length) {
      for (const [table, bucket] of [
        ['login_rollups_hourly', hour],
        ['login_rollups_daily', utcDay],
      ] as const)
        this.#addCounts(
          table,
          LOGIN_DIMENSIONS,
          aggregate(logins, (r) => [
            r.projectId,
            bucket(r.ts),
            r.method,
            r.deviceType,
            r.browser ?? 'unknown',
            r.os ?? 'unknown',
            ok(r),
          ]),
        )
      this.#addCounts(
        'login_counts_hourly',
        [...KEY, ['success', 'boolean']],
        aggregate(logins, (r) => [r.projectId, hour(r.ts), ok(r)]),
      )
    }
    if (activities.length) {
      for (const [table, bucket] of [
        ['activity_rollups_hourly', hour],
        ['activity_rollups_daily', utcDay],
      ] as const)
        this.#addCounts(
          table,
          [...KEY, ['action', 'text'], ['entity_type', 'text']],
          aggregate(activities, (r) => [r.projectId, bucket(r.ts), r.action, r.entityType ?? '']),
        )
      this.#addCounts(
        'activity_counts_hourly',
        KEY,
        aggregate(activities, (r) => [r.projectId, hour(r.ts)]),
      )
    }
    if (events.length)
      this.#addCounts(
        'event_rollups_hourly',
        [...KEY, ['type', 'text'], ['name', 'text']],
        aggregate(events, (r) => [r.projectId, hour(r.ts), r.type, r.name ?? '']),
      )
    return this
  }

  /** Adds aggregated counts (`[...key values, n]`) to a rollup table keyed by `columns`. */
  #addCounts(table: string, columns: readonly Column[], agg: Aggregated[]): void {
    const names = columns.map(([name]) => name).join(', ')
    const fields: [string, string, (a: Aggregated) => unknown][] = columns.map(
      ([name, type], i) => [name, type, type === 'boolean' ? (a) => a[i] === 't' : (a) => a[i]],
    )
    fields.push(['count', 'bigint', (a) => a[columns.length]])
    this.#push(
      `INSERT INTO ${table} AS r (${names}, count) SELECT * FROM ${this.#records(agg, fields)}
       ON CONFLICT (${names}) DO UPDATE SET count = r.count + excluded.count`,
    )
  }

  /**
   * Sets the user bitmaps (see migration 0007) for `(project, UTC hour, user, kind)` keys, sorted
   * so upserts lock in one order. Users without an id get one here: ids are allocated from the
   * project's counter row, and a user inserted concurrently by another flush keeps that flush's
   * id (ON CONFLICT DO UPDATE returns the committed row; the id allocated here becomes a gap).
   */
  userBits(keys: [string, UserBitKey][]): this {
    if (!keys.length) return this
    const src = this.#records(keys, [
      ['p', 'uuid', (k) => k[1][0]],
      ['h', 'timestamptz', (k) => k[1][1]],
      ['u', 'text', (k) => k[1][2]],
      ['k', '"char"', (k) => k[1][3]],
    ])
    this.#push(`SELECT * FROM ${src}`, 'ub_src')
    this.#push('SELECT DISTINCT p, u FROM ub_src', 'ub_users')
    // One index probe per user (a scalar subquery): as a join, the planner (which guesses 100
    // rows for json_to_recordset) hashed the whole id table, every project's users, per flush.
    this.#push(
      `SELECT s.p, s.u,
              (SELECT i.uid FROM analytics_user_ids i WHERE i.project_id = s.p AND i.user_id = s.u) AS uid
       FROM ub_users s`,
      'ub_lookup',
    )
    this.#push(
      `SELECT p, u, (row_number() OVER (PARTITION BY p ORDER BY u))::int - 1 AS rn,
              (count(*) OVER (PARTITION BY p))::int AS n
       FROM ub_lookup WHERE uid IS NULL`,
      'ub_missing',
    )
    this.#push(
      `INSERT INTO analytics_user_id_counters AS c (project_id, allocated)
       SELECT p, max(n) FROM ub_missing GROUP BY p ORDER BY p
       ON CONFLICT (project_id) DO UPDATE SET allocated = c.allocated + excluded.allocated
       RETURNING project_id, allocated`,
      'ub_counter',
    )
    this.#push(
      `INSERT INTO analytics_user_ids AS i (project_id, user_id, uid)
       SELECT m.p, m.u, c.allocated - m.n + m.rn FROM ub_missing m JOIN ub_counter c ON c.project_id = m.p
       ORDER BY 1, 2
       ON CONFLICT (project_id, user_id) DO UPDATE SET uid = i.uid
       RETURNING project_id AS p, user_id AS u, uid`,
      'ub_new',
    )
    this.#push(
      `INSERT INTO user_bitmaps AS b (project_id, kind, grain, bucket, chunk, bits)
       SELECT s.p, s.k, g.grain, g.bucket, i.uid >> 13, strata_bitmap(array_agg(DISTINCT i.uid & 8191))
       FROM ub_src s
       JOIN (SELECT p, u, uid FROM ub_lookup WHERE uid IS NOT NULL UNION ALL SELECT p, u, uid FROM ub_new) i
         ON i.p = s.p AND i.u = s.u
       CROSS JOIN LATERAL (VALUES ('h'::"char", s.h), ('d'::"char", date_trunc('day', s.h, 'UTC'))) g(grain, bucket)
       GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
       ON CONFLICT (project_id, kind, grain, bucket, chunk) DO UPDATE SET bits = b.bits | excluded.bits`,
    )
    return this
  }
}

/**
 * ISO string of the start of the `unitMs`-long UTC period holding an epoch ms, memoised on the
 * last period: a flush's rows mostly share receivedAt, their ts hour and their day.
 */
function periodIso(unitMs: number): (ms: number) => string {
  let last = NaN
  let lastIso = ''
  return (ms) => {
    const start = Math.floor(ms / unitMs) * unitMs
    if (start !== last) {
      last = start
      lastIso = new Date(start).toISOString()
    }
    return lastIso
  }
}

/** ISO string of an epoch ms (integer ms: the period of 1 ms is the instant itself). */
export const iso = periodIso(1)
/** ISO start of the UTC hour. */
const hour = periodIso(3_600_000)
/** ISO start of the UTC day. */
const utcDay = periodIso(86_400_000)

/** `[project, UTC hour ISO, user, kind]`: kind 'a' (any activity) or 'l' (login). */
export type UserBitKey = [string, string, string, 'a' | 'l']

/** The user-bitmap keys of rows with a user id: every such row is activity, a login also 'l'. */
export function userBitKeys(rows: EventRow[]): Map<string, UserBitKey> {
  const keys = new Map<string, UserBitKey>()
  for (const r of rows) {
    if (r.userId === null) continue
    const h = hour(r.ts)
    const base = `${r.projectId}\u0000${h}\u0000${r.userId}\u0000`
    keys.set(`${base}a`, [r.projectId, h, r.userId, 'a'])
    if (r.kind === 'login') keys.set(`${base}l`, [r.projectId, h, r.userId, 'l'])
  }
  return keys
}

/** Counts rows per key tuple; sorted by key so concurrent upserts lock rows in one order. */
type Aggregated = (string | number)[]

type Column = readonly [name: string, type: string]
/** Every rollup's key starts with the project and the bucket. */
const KEY: readonly Column[] = [
  ['project_id', 'uuid'],
  ['bucket', 'timestamptz'],
]
const LOGIN_DIMENSIONS: readonly Column[] = [
  ...KEY,
  ['method', 'text'],
  ['device_type', 'text'],
  ['browser', 'text'],
  ['os', 'text'],
  ['success', 'boolean'],
]

function aggregate<R>(rows: R[], key: (r: R) => string[]): Aggregated[] {
  const counts = new Map<string, { parts: string[]; n: number }>()
  for (const r of rows) {
    const parts = key(r)
    const k = parts.join('\u0000')
    const c = counts.get(k)
    if (c) c.n++
    else counts.set(k, { parts, n: 1 })
  }
  return [...counts.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([, c]) => [...c.parts, c.n])
}

import type { ActivityRow, EventRow, LoginRow, SegmentRow } from '../types.js'

/**
 * Builds ONE statement of data-modifying CTEs (`WITH a AS (INSERT ...), b AS (INSERT ...)
 * SELECT 1`) for everything a flush writes after dedup: on a busy two-core machine each round
 * trip costs milliseconds, and a flush's fixed cost is what bounds single-event throughput.
 * Postgres runs every data-modifying CTE exactly once, in one snapshot, atomically.
 */
export class FlushStatement {
  #parts: string[] = []
  #params: unknown[] = []

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

  get empty(): boolean {
    return this.#parts.length === 0
  }

  build(): { sql: string; params: unknown[] } {
    const ctes = this.#parts.map((sql, i) => `w${i} AS (${sql})`).join(',\n')
    return { sql: `WITH ${ctes}\nSELECT 1`, params: this.#params }
  }

  logins(rows: LoginRow[]): this {
    if (!rows.length) return this
    this.#parts.push(
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
    this.#parts.push(
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
    this.#parts.push(
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

  /** Hourly rollups of the fresh rows, aggregated here; sorted so upserts lock in one order. */
  rollups(logins: LoginRow[], activities: ActivityRow[], events: SegmentRow[]): this {
    if (logins.length) {
      const agg = columns(
        aggregate(logins, (r) => [
          r.projectId,
          hour(r.ts),
          r.method,
          r.deviceType,
          r.browser ?? 'unknown',
          r.os ?? 'unknown',
          r.success ? 't' : 'f',
        ]),
        7,
      )
      const casts = [
        'uuid[]',
        'timestamptz[]',
        'text[]',
        'text[]',
        'text[]',
        'text[]',
        'boolean[]',
        'bigint[]',
      ]
      this.#parts.push(
        `INSERT INTO login_rollups_hourly AS r (project_id, bucket, method, device_type, browser, os, success, count)
         SELECT * FROM unnest(${agg.map((a, i) => this.#p(a, casts[i]!)).join(', ')})
         ON CONFLICT (project_id, bucket, method, device_type, browser, os, success) DO UPDATE SET count = r.count + excluded.count`,
      )
    }
    if (activities.length) {
      const agg = columns(
        aggregate(activities, (r) => [r.projectId, hour(r.ts), r.action, r.entityType ?? '']),
        4,
      )
      const casts = ['uuid[]', 'timestamptz[]', 'text[]', 'text[]', 'bigint[]']
      this.#parts.push(
        `INSERT INTO activity_rollups_hourly AS r (project_id, bucket, action, entity_type, count)
         SELECT * FROM unnest(${agg.map((a, i) => this.#p(a, casts[i]!)).join(', ')})
         ON CONFLICT (project_id, bucket, action, entity_type) DO UPDATE SET count = r.count + excluded.count`,
      )
    }
    if (events.length) {
      const agg = columns(
        aggregate(events, (r) => [r.projectId, hour(r.ts), r.type, r.name ?? '']),
        4,
      )
      const casts = ['uuid[]', 'timestamptz[]', 'text[]', 'text[]', 'bigint[]']
      this.#parts.push(
        `INSERT INTO event_rollups_hourly AS r (project_id, bucket, type, name, count)
         SELECT * FROM unnest(${agg.map((a, i) => this.#p(a, casts[i]!)).join(', ')})
         ON CONFLICT (project_id, bucket, type, name) DO UPDATE SET count = r.count + excluded.count`,
      )
    }
    return this
  }

  /** New (project, UTC day, user) keys, given sorted `[key, [project, day, user]]` pairs. */
  userDays(keys: [string, [string, string, string]][]): this {
    if (!keys.length) return this
    this.#parts.push(
      `INSERT INTO user_activity_daily (project_id, day, user_id)
       SELECT * FROM unnest(${this.#p(
         keys.map((k) => k[1][0]),
         'uuid[]',
       )}, ${this.#p(
         keys.map((k) => k[1][1]),
         'date[]',
       )}, ${this.#p(
         keys.map((k) => k[1][2]),
         'text[]',
       )})
       ON CONFLICT DO NOTHING`,
    )
    return this
  }

  /** A successful login carrying a sessionId opens that session (first login wins). */
  sessions(logins: LoginRow[], ttlMs: number): this {
    const rows = openedSessions(logins)
    if (rows.length === 0) return this
    const ttl = this.#p(ttlMs, 'double precision')
    this.#parts.push(
      `INSERT INTO user_sessions (project_id, session_id, user_id, created_at, last_activity_at, expires_at, ip, user_agent, device_type, browser, os)
       SELECT p, s, u, t, t, t + make_interval(secs => ${ttl} / 1000), ip, ua, dt, b, o
       FROM ${this.#records(rows, [
         ['p', 'uuid', (r) => r.projectId],
         ['s', 'text', (r) => r.sessionId],
         ['u', 'text', (r) => r.userId],
         ['t', 'timestamptz', (r) => iso(r.ts)],
         ['ip', 'inet', (r) => r.ip],
         ['ua', 'text', (r) => r.userAgent],
         ['dt', 'text', (r) => r.deviceType],
         ['b', 'text', (r) => r.browser],
         ['o', 'text', (r) => r.os],
       ])}
       ON CONFLICT (project_id, session_id) DO NOTHING`,
    )
    return this
  }
}

/** Logins that open a session: successful, with a sessionId; first per session, sorted. */
export function openedSessions(logins: LoginRow[]): LoginRow[] {
  const opened = new Map<string, LoginRow>()
  for (const r of logins) {
    const k = `${r.projectId}\u0000${r.sessionId}`
    if (r.success && r.sessionId && !opened.has(k)) opened.set(k, r)
  }
  return [...opened.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map((x) => x[1])
}

let lastMs = NaN
let lastIso = ''
/** ISO string of an epoch ms; memoised because a request's rows share receivedAt (and often ts). */
export function iso(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms
    lastIso = new Date(ms).toISOString()
  }
  return lastIso
}

function hour(ms: number): string {
  return new Date(ms - (ms % 3_600_000)).toISOString()
}

/** (project, UTC day, user) keys of rows with a user id. */
export function userDayKeys(rows: EventRow[]): Map<string, [string, string, string]> {
  const users = new Map<string, [string, string, string]>()
  for (const r of rows) {
    if (r.userId === null) continue
    const day = new Date(r.ts).toISOString().slice(0, 10)
    users.set(`${r.projectId}\u0000${day}\u0000${r.userId}`, [r.projectId, day, r.userId])
  }
  return users
}

/** Counts rows per key tuple; sorted by key so concurrent upserts lock rows in one order. */
function aggregate<R>(rows: R[], key: (r: R) => string[]): (string | number)[][] {
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

/** Transposes rows of `width` key parts + count into unnest() column arrays. */
function columns(rows: (string | number)[][], width: number): unknown[][] {
  const out: unknown[][] = Array.from({ length: width + 1 }, () => [])
  for (const r of rows) for (let i = 0; i <= width; i++) out[i]!.push(r[i])
  return out
}

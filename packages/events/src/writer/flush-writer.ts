import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { sqlState, type Database } from '@strata/pg'
import type { PoolClient } from 'pg'
import { LRUCache } from 'lru-cache'
import { from as copyFrom } from 'pg-copy-streams'
import type { ActivityRow, EventRow, LoginRow, SegmentRow } from '../types.js'
import { copyBool, copyJson, copyText, NULL } from './copy-text.js'
import { FlushStatement, iso, userBitKeys, type UserBitKey } from './flush-statement.js'
import { monthKey, type PartitionedTable, type PartitionManager } from './partitions.js'

/**
 * How a flush writes: `single` = the whole transaction as ONE parameterised statement (small
 * flushes), `copy` = COPY keys and rows (large flushes); both assume no repeats and
 * fall back to `safe` (INSERT … ON CONFLICT, returning the repeats) on a unique violation.
 */
type FlushMode = 'single' | 'copy' | 'safe'

interface Entry {
  row: EventRow
  index: number
}

/**
 * The SQL side of a group-commit flush: partitions, dedup keys, event rows (COPY or bound
 * parameters), rollups and user bitmaps in one transaction. Queueing, retries and isolation of
 * bad rows are the GroupCommitWriter's.
 */
export class FlushWriter {
  readonly #db: Database
  readonly #partitions: PartitionManager
  readonly #copyThreshold: number
  readonly #beforeCommit: ((client: PoolClient) => Promise<void>) | undefined
  // (project, period, user) bitmap keys known to be committed. The set only grows within a
  // period, so a key seen committed needs no further upsert.
  readonly #knownUserBits = new LRUCache<string, true>({ max: 200_000 })

  constructor(
    db: Database,
    options: {
      partitions: PartitionManager
      copyThreshold: number
      beforeCommit?: ((client: PoolClient) => Promise<void>) | undefined
    },
  ) {
    this.#db = db
    this.#partitions = options.partitions
    this.#copyThreshold = options.copyThreshold
    this.#beforeCommit = options.beforeCommit
  }

  /**
   * Writes `rows` in one transaction and answers, per row, whether it was new or a repeat (of
   * a committed row or of an earlier row in `rows`). Resolves only after COMMIT.
   */
  async write(rows: EventRow[]): Promise<('inserted' | 'duplicate')[]> {
    const entries = rows.map((row, index) => ({ row, index }))
    // Repeats inside the batch: the first occurrence wins, later ones are duplicates.
    const firstByKey = new Map<string, Entry>()
    const repeats: Entry[] = []
    for (const e of entries) {
      const key = `${e.row.projectId}\u0000${e.row.messageId}`
      if (firstByKey.has(key)) repeats.push(e)
      else firstByKey.set(key, e)
    }
    const unique = [...firstByKey.values()]
    // Same lock order in every transaction: concurrent flushes never deadlock on dedup keys.
    unique.sort((a, b) =>
      a.row.projectId < b.row.projectId
        ? -1
        : a.row.projectId > b.row.projectId
          ? 1
          : a.row.messageId < b.row.messageId
            ? -1
            : a.row.messageId > b.row.messageId
              ? 1
              : 0,
    )

    const months = new Map<string, [PartitionedTable, string]>()
    for (const e of unique) {
      const table: PartitionedTable =
        e.row.kind === 'login'
          ? 'login_events'
          : e.row.kind === 'activity'
            ? 'activity_logs'
            : 'events'
      const m = monthKey(e.row.ts)
      months.set(`${table}:${m}`, [table, m])
    }
    // Outside the flush transaction: CREATE TABLE ... PARTITION OF locks the parent table.
    await this.#partitions.ensure(this.#db, months.values())

    // Flushes first try an optimistic path that assumes no repeats (they are rare: client
    // retries). Large ones COPY every key into event_dedup with no ON CONFLICT (COPY's bulk
    // path costs far less than INSERT ... ON CONFLICT's per-row speculative insertion); small
    // ones send the whole transaction in one round trip. A repeat makes the dedup write fail
    // with unique_violation before anything else is written; the flush then runs again on the
    // conflict-safe path.
    let mode: FlushMode = unique.length > this.#copyThreshold ? 'copy' : 'single'
    const outcome = await this.#db.withClient(
      async (client) => {
        for (;;) {
          try {
            return await this.#flushTransaction(client, unique, mode)
          } catch (err) {
            // A single-mode flush without the test seam opened no transaction block.
            if (mode !== 'single' || this.#beforeCommit)
              await client.query('ROLLBACK').catch(() => {})
            if (mode !== 'safe' && sqlState(err) === '23505') {
              mode = 'safe'
              continue
            }
            throw err
          }
        }
      },
      { label: 'events.flush' },
    )

    // Only after COMMIT: the outcomes (a retry recomputes them all).
    const out: ('inserted' | 'duplicate')[] = new Array(rows.length).fill('duplicate')
    for (const e of unique)
      if (outcome.has(`${e.row.projectId}\u0000${e.row.messageId}`)) out[e.index] = 'inserted'
    return out
  }

  /**
   * One flush transaction; returns the keys that were new. BEGIN is sent here too (queued in
   * pg's client, not awaited on its own), and the caller rolls back on error.
   */
  async #flushTransaction(
    client: PoolClient,
    unique: Entry[],
    mode: FlushMode,
  ): Promise<Set<string>> {
    if (mode === 'single') return this.#singleTransaction(client, unique)
    const begun = client.query('BEGIN')
    let repeated = new Set<string>()
    if (mode === 'copy') {
      await begun
      await copyRows(
        client,
        'COPY event_dedup (project_id, message_id, ts) FROM STDIN',
        unique.map((e) => `${e.row.projectId}\t${copyText(e.row.messageId)}\t${iso(e.row.ts)}`),
      )
    } else {
      // Returns only the repeats (usually none), so the common case parses no rows.
      const query = client.query<{ project_id: string; message_id: string }>(
        `WITH input AS (
           SELECT * FROM json_to_recordset($1::json) AS x(p uuid, m text, t timestamptz)
         ), ins AS (
           INSERT INTO event_dedup (project_id, message_id, ts) SELECT p, m, t FROM input
           ON CONFLICT DO NOTHING
           RETURNING project_id, message_id
         )
         SELECT i.p AS project_id, i.m AS message_id FROM input i
         WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.project_id = i.p AND ins.message_id = i.m)`,
        [
          JSON.stringify(
            unique.map((e) => ({ p: e.row.projectId, m: e.row.messageId, t: iso(e.row.ts) })),
          ),
        ],
      )
      const [, res] = await Promise.all([begun, query])
      repeated = new Set(res.rows.map((r) => `${r.project_id}\u0000${r.message_id}`))
    }
    const logins: LoginRow[] = []
    const activities: ActivityRow[] = []
    const events: SegmentRow[] = []
    const fresh = new Set<string>()
    for (const e of unique) {
      const key = `${e.row.projectId}\u0000${e.row.messageId}`
      if (repeated.has(key)) continue
      fresh.add(key)
      if (e.row.kind === 'login') logins.push(e.row)
      else if (e.row.kind === 'activity') activities.push(e.row)
      else events.push(e.row)
    }
    const stmt = new FlushStatement()
    if (logins.length + activities.length + events.length > this.#copyThreshold) {
      // Large flushes stream the event rows with COPY (cheapest per row); small ones put
      // them in the single follow-up statement (fewest round trips).
      if (logins.length) await copyRows(client, LOGIN_COPY, logins.map(loginLine))
      if (activities.length) await copyRows(client, ACTIVITY_COPY, activities.map(activityLine))
      if (events.length) await copyRows(client, EVENT_COPY, events.map(eventLine))
    } else stmt.logins(logins).activities(activities).events(events)
    const userBits = this.#newUserBits(logins, activities, events)
    stmt.rollups(logins, activities, events).userBits(userBits)
    // Values go as parameters, never into the SQL text (see FlushStatement), so the last
    // statement and COMMIT are two round trips: the extended protocol takes one statement.
    if (!stmt.empty) {
      const { sql, params } = stmt.build()
      await client.query(sql, params)
    }
    await this.#beforeCommit?.(client)
    await client.query('COMMIT')
    for (const [k] of userBits) this.#knownUserBits.set(k, true)
    return fresh
  }

  /**
   * A small flush in ONE round trip: dedup keys, rows, rollups and user bitmaps as one
   * statement of data-modifying CTEs with bound parameters (pg sends Parse/Bind/Execute/Sync
   * together). Outside a transaction block one statement is its own transaction, so it commits
   * whole or not at all: a repeat (unique_violation on the dedup keys) writes nothing and the
   * caller reruns the flush on the conflict-safe path. Resolves only after COMMIT.
   */
  async #singleTransaction(client: PoolClient, unique: Entry[]): Promise<Set<string>> {
    const logins: LoginRow[] = []
    const activities: ActivityRow[] = []
    const events: SegmentRow[] = []
    const fresh = new Set<string>()
    for (const e of unique) {
      fresh.add(`${e.row.projectId}\u0000${e.row.messageId}`)
      if (e.row.kind === 'login') logins.push(e.row)
      else if (e.row.kind === 'activity') activities.push(e.row)
      else events.push(e.row)
    }
    const userBits = this.#newUserBits(logins, activities, events)
    const stmt = new FlushStatement()
      .dedup(unique.map((e) => e.row))
      .logins(logins)
      .activities(activities)
      .events(events)
      .rollups(logins, activities, events)
      .userBits(userBits)
    const { sql, params } = stmt.build()
    if (this.#beforeCommit) {
      await client.query('BEGIN')
      await client.query(sql, params)
      await this.#beforeCommit(client)
      await client.query('COMMIT')
    } else await client.query(sql, params)
    for (const [k] of userBits) this.#knownUserBits.set(k, true)
    return fresh
  }

  /** User-bitmap keys of these rows not yet known to be committed, in lock order. */
  #newUserBits(
    logins: LoginRow[],
    activities: ActivityRow[],
    events: SegmentRow[],
  ): [string, UserBitKey][] {
    return [...userBitKeys([...logins, ...activities, ...events])]
      .filter(([k]) => !this.#knownUserBits.has(k))
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
  }
}

const LOGIN_COPY =
  'COPY login_events (project_id, ts, message_id, user_id, email, method, success, failure_reason, session_id, ip, device_type, browser, os, user_agent, received_at) FROM STDIN'
const ACTIVITY_COPY =
  'COPY activity_logs (project_id, ts, message_id, user_id, session_id, action, entity_type, entity_id, metadata, received_at) FROM STDIN'
const EVENT_COPY =
  'COPY events (project_id, ts, message_id, type, name, user_id, anonymous_id, properties, context, received_at) FROM STDIN'

function loginLine(r: LoginRow): string {
  return [
    r.projectId,
    iso(r.ts),
    copyText(r.messageId),
    copyText(r.userId),
    copyText(r.email),
    copyText(r.method),
    copyBool(r.success),
    copyText(r.failureReason),
    copyText(r.sessionId),
    r.ip ?? NULL,
    r.deviceType,
    copyText(r.browser),
    copyText(r.os),
    copyText(r.userAgent),
    iso(r.receivedAt),
  ].join('\t')
}

function activityLine(r: ActivityRow): string {
  return [
    r.projectId,
    iso(r.ts),
    copyText(r.messageId),
    copyText(r.userId),
    copyText(r.sessionId),
    copyText(r.action),
    copyText(r.entityType),
    copyText(r.entityId),
    copyJson(r.metadata),
    iso(r.receivedAt),
  ].join('\t')
}

function eventLine(r: SegmentRow): string {
  return [
    r.projectId,
    iso(r.ts),
    copyText(r.messageId),
    r.type,
    copyText(r.name),
    copyText(r.userId),
    copyText(r.anonymousId),
    copyJson(r.properties),
    copyJson(r.context),
    iso(r.receivedAt),
  ].join('\t')
}

async function copyRows(client: PoolClient, sql: string, lines: string[]): Promise<void> {
  const stream = client.query(copyFrom(sql))
  await pipeline(Readable.from([lines.join('\n') + '\n']), stream)
}

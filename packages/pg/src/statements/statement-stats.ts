import type { Logger } from '@strata/core'
import type { MigrationSet } from '../migrate.js'
import type { Queryable } from '../queryable.js'

/** The history tables (statement snapshots, minute and hourly buckets). List it in your migrations. */
export const pgMigrations: MigrationSet = {
  name: 'pg',
  dir: new URL('../../migrations/', import.meta.url),
}

export interface StatementRow {
  queryid: string
  /** pg_stat_statements' normalized text. */
  query: string
  calls: number
  rows: number
  totalMs: number
  meanMs: number
  sharedBlksHit: number
  sharedBlksRead: number
  /** shared_blks_hit / (hit + read); null when the statement read no blocks. */
  cacheHitRatio: number | null
}

/** Cumulative counters of this database's statements at one instant. */
export interface StatementSnapshot {
  takenAt: Date
  rows: Map<string, StatementRow>
}

export type StatementsUnavailable = {
  available: false
  code: 'STRATA_DB_EXTENSION_MISSING'
  message: string
  hint: string
}

export type TopStatements =
  | {
      available: true
      orderBy: 'total' | 'mean' | 'calls'
      /** Start of the measured interval: the `since` snapshot, or when the counters started. */
      since: string | null
      items: StatementRow[]
    }
  | StatementsUnavailable

export interface HistoryPoint {
  bucket: string
  calls: number
  totalMs: number
  meanMs: number
}

export interface Regression {
  queryid: string
  query: string
  recentMeanMs: number
  baselineMeanMs: number
  /** recent / baseline mean. */
  factor: number
  recentCalls: number
}

export interface StatementsOptions {
  /** Try CREATE EXTENSION pg_stat_statements / hypopg when missing (needs the privilege; failures are reported, not thrown). @defaultValue true */
  createExtension?: boolean
  /** Sampling period of `startSampler()`. @defaultValue 60000 */
  sampleIntervalMs?: number
  /** A statement is a regression when its recent mean is this many times its baseline mean. @defaultValue 2 */
  regressionFactor?: number
}

const LABEL = 'strata:statements'
const MINUTE_RETENTION = '24 hours'
const HOUR_RETENTION = '14 days'
// Sampling lock key ('STRATASS' as a bigint): one instance samples per period.
const SAMPLE_LOCK_KEY = '6004234345560593235'

const CURRENT_SQL = `SELECT queryid::text AS queryid, min(query) AS query, sum(calls)::float8 AS calls,
    sum(rows)::float8 AS rows, sum(total_exec_time)::float8 AS total_ms,
    sum(shared_blks_hit)::float8 AS hit, sum(shared_blks_read)::float8 AS read
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND queryid IS NOT NULL
 GROUP BY queryid`

interface CurrentRow {
  queryid: string
  query: string
  calls: number
  rows: number
  total_ms: number
  hit: number
  read: number
}

function toRow(r: CurrentRow): StatementRow {
  const blocks = r.hit + r.read
  return {
    queryid: r.queryid,
    query: r.query,
    calls: r.calls,
    rows: r.rows,
    totalMs: round(r.total_ms),
    meanMs: r.calls ? round(r.total_ms / r.calls) : 0,
    sharedBlksHit: r.hit,
    sharedBlksRead: r.read,
    cacheHitRatio: blocks ? round(r.hit / blocks, 4) : null,
  }
}

function round(n: number, d = 3): number {
  const f = 10 ** d
  return Math.round(n * f) / f
}

/** a − b per statement (b missing or larger — a reset or eviction — counts a as new). */
export function diffSnapshots(
  a: StatementSnapshot,
  b: StatementSnapshot | undefined,
): StatementRow[] {
  const out: StatementRow[] = []
  for (const [id, cur] of a.rows) {
    const prev = b?.rows.get(id)
    const reset = prev === undefined || cur.calls < prev.calls
    const calls = reset ? cur.calls : cur.calls - prev.calls
    if (calls <= 0) continue
    const totalMs = reset ? cur.totalMs : cur.totalMs - prev.totalMs
    const hit = reset ? cur.sharedBlksHit : cur.sharedBlksHit - prev.sharedBlksHit
    const read = reset ? cur.sharedBlksRead : cur.sharedBlksRead - prev.sharedBlksRead
    out.push(
      toRow({
        queryid: id,
        query: cur.query,
        calls,
        rows: reset ? cur.rows : cur.rows - prev.rows,
        total_ms: totalMs,
        hit,
        read,
      }),
    )
  }
  return out
}

/**
 * `db.statements`: pg_stat_statements read by snapshot and diff. Never calls
 * pg_stat_statements_reset() (that would break every other tool reading it). When the extension
 * is missing or not preloaded, answers `{ available: false, code, message, hint }` instead of
 * throwing.
 */
export class StatementStats {
  readonly #db: Queryable
  readonly #logger: Logger
  readonly #createExtension: boolean
  readonly #intervalMs: number
  readonly #regressionFactor: number
  #availability: Promise<StatementsUnavailable | undefined> | undefined
  #start: StatementSnapshot | undefined
  #timer: NodeJS.Timeout | undefined

  constructor(db: Queryable, options: Required<StatementsOptions>, logger: Logger) {
    this.#db = db
    this.#logger = logger
    this.#createExtension = options.createExtension
    this.#intervalMs = options.sampleIntervalMs
    this.#regressionFactor = options.regressionFactor
  }

  /** Whether pg_stat_statements can be read here (cached after the first success). */
  async availability(): Promise<StatementsUnavailable | undefined> {
    const p = (this.#availability ??= this.#check())
    const r = await p
    // Not cached when missing: an operator may fix it without restarting us.
    if (r) this.#availability = undefined
    return r
  }

  async #check(): Promise<StatementsUnavailable | undefined> {
    const hint =
      "Add pg_stat_statements to shared_preload_libraries (ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'; restart), then CREATE EXTENSION pg_stat_statements in this database"
    const installed = async (): Promise<boolean> =>
      (
        await this.#db.query(
          `SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'`,
          [],
          {
            label: LABEL,
          },
        )
      ).rows.length > 0
    try {
      if (!(await installed()) && this.#createExtension) {
        await this.#db
          .query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements', [], { label: LABEL })
          .catch((err: unknown) => this.#logger.debug({ err }, 'cannot create pg_stat_statements'))
      }
      if (!(await installed()))
        return {
          available: false,
          code: 'STRATA_DB_EXTENSION_MISSING',
          message: 'The pg_stat_statements extension is not installed in this database',
          hint,
        }
      await this.#db.query('SELECT 1 FROM pg_stat_statements LIMIT 1', [], { label: LABEL })
      return undefined
    } catch (err) {
      return {
        available: false,
        code: 'STRATA_DB_EXTENSION_MISSING',
        message: `pg_stat_statements cannot be read: ${(err as Error).message}`,
        hint,
      }
    }
  }

  /** Current cumulative counters (throws when unavailable; check `availability()` first). */
  async snapshot(): Promise<StatementSnapshot> {
    const { rows } = await this.#db.query<CurrentRow>(CURRENT_SQL, [], { label: LABEL })
    return { takenAt: new Date(), rows: new Map(rows.map((r) => [r.queryid, toRow(r)])) }
  }

  /**
   * Top statements by total or mean time. With `since` (a snapshot, or 'start' = the first
   * snapshot this handle took) the figures are the difference since then; otherwise cumulative
   * since pg_stat_statements' counters started.
   */
  async top(
    options: {
      orderBy?: 'total' | 'mean' | 'calls'
      limit?: number
      since?: StatementSnapshot | 'start'
    } = {},
  ): Promise<TopStatements> {
    const missing = await this.availability()
    if (missing) return missing
    const orderBy = options.orderBy ?? 'total'
    const now = await this.snapshot()
    this.#start ??= now
    const base = options.since === 'start' ? this.#start : options.since
    let rows = base ? diffSnapshots(now, base) : [...now.rows.values()].filter((r) => r.calls > 0)
    const key = (r: StatementRow): number =>
      orderBy === 'mean' ? r.meanMs : orderBy === 'calls' ? r.calls : r.totalMs
    rows = rows.sort((a, b) => key(b) - key(a)).slice(0, options.limit ?? 20)
    let since: string | null = base ? base.takenAt.toISOString() : null
    if (!base) {
      const info = await this.#db
        .query<{ stats_reset: Date }>(`SELECT stats_reset FROM pg_stat_statements_info`, [], {
          label: LABEL,
        })
        .catch(() => undefined)
      since = info?.rows[0]?.stats_reset?.toISOString() ?? null
    }
    return { available: true, orderBy, since, items: rows }
  }

  /**
   * Writes one history sample: the delta since the stored snapshot into the current minute and
   * hour buckets, then replaces the snapshot and prunes old buckets. Several instances may call
   * it; a transaction-scoped advisory lock lets one of them do it at a time (PgBouncer-safe).
   * Returns the number of statements recorded, or undefined when skipped/unavailable.
   */
  async sample(now = new Date()): Promise<number | undefined> {
    if (await this.availability()) return undefined
    const db = this.#db as Queryable & {
      transaction?: <T>(fn: (tx: Queryable) => Promise<T>, o?: { label?: string }) => Promise<T>
    }
    if (!db.transaction) return undefined
    return db.transaction(
      async (tx) => {
        const { rows: lock } = await tx.query<{ ok: boolean }>(
          `SELECT pg_try_advisory_xact_lock(${SAMPLE_LOCK_KEY}) AS ok`,
          [],
          { label: LABEL },
        )
        if (!lock[0]?.ok) return undefined
        const cur = (await tx.query<CurrentRow>(CURRENT_SQL, [], { label: LABEL })).rows
        const prev = await tx.query<CurrentRow>(
          `SELECT queryid::text AS queryid, '' AS query, calls::float8 AS calls, rows::float8 AS rows,
                total_ms, shared_blks_hit::float8 AS hit, shared_blks_read::float8 AS read
           FROM strata_statement_snapshot`,
          [],
          { label: LABEL },
        )
        const snap = (rows: CurrentRow[]): StatementSnapshot => ({
          takenAt: now,
          rows: new Map(rows.map((r) => [r.queryid, toRow(r)])),
        })
        // The first sample only records the baseline snapshot (no delta to attribute).
        const deltas = prev.rows.length ? diffSnapshots(snap(cur), snap(prev.rows)) : []
        if (deltas.length) {
          const cols = {
            id: deltas.map((d) => d.queryid),
            q: deltas.map((d) => d.query),
            calls: deltas.map((d) => d.calls),
            ms: deltas.map((d) => d.totalMs),
            rows: deltas.map((d) => d.rows),
            hit: deltas.map((d) => d.sharedBlksHit),
            read: deltas.map((d) => d.sharedBlksRead),
          }
          for (const [resolution, unit] of [
            ['minute', 'minute'],
            ['hour', 'hour'],
          ] as const)
            await tx.query(
              `INSERT INTO strata_statement_history AS h
               (resolution, bucket, queryid, query, calls, total_ms, rows, shared_blks_hit, shared_blks_read)
             SELECT '${resolution}', date_trunc('${unit}', $1::timestamptz), d.* FROM unnest(
               $2::bigint[], $3::text[], $4::bigint[], $5::float8[], $6::bigint[], $7::bigint[], $8::bigint[]) AS d
             ON CONFLICT (resolution, bucket, queryid) DO UPDATE SET
               calls = h.calls + excluded.calls, total_ms = h.total_ms + excluded.total_ms,
               rows = h.rows + excluded.rows, shared_blks_hit = h.shared_blks_hit + excluded.shared_blks_hit,
               shared_blks_read = h.shared_blks_read + excluded.shared_blks_read, query = excluded.query`,
              [now, cols.id, cols.q, cols.calls, cols.ms, cols.rows, cols.hit, cols.read],
              { label: LABEL },
            )
        }
        await tx.query('DELETE FROM strata_statement_snapshot', [], { label: LABEL })
        await tx.query(
          `INSERT INTO strata_statement_snapshot (queryid, calls, total_ms, rows, shared_blks_hit, shared_blks_read, taken_at)
         SELECT * , $7::timestamptz FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::bigint[], $5::bigint[], $6::bigint[])`,
          [
            cur.map((r) => r.queryid),
            cur.map((r) => r.calls),
            cur.map((r) => r.total_ms),
            cur.map((r) => r.rows),
            cur.map((r) => r.hit),
            cur.map((r) => r.read),
            now,
          ],
          { label: LABEL },
        )
        await tx.query(
          `DELETE FROM strata_statement_history
          WHERE (resolution = 'minute' AND bucket < $1::timestamptz - interval '${MINUTE_RETENTION}')
             OR (resolution = 'hour' AND bucket < $1::timestamptz - interval '${HOUR_RETENTION}')`,
          [now],
          { label: LABEL },
        )
        return deltas.length
      },
      { label: LABEL },
    )
  }

  /**
   * Totals per bucket over the last `durationMs`: minute buckets up to 24 h, hourly beyond.
   * With `queryid`, one statement's series.
   */
  async history(options: { durationMs: number; queryid?: string }): Promise<{
    resolution: 'minute' | 'hour'
    points: HistoryPoint[]
  }> {
    const resolution = options.durationMs <= 24 * 3_600_000 ? 'minute' : 'hour'
    const { rows } = await this.#db.query<{ bucket: Date; calls: number; total_ms: number }>(
      `SELECT bucket, sum(calls)::float8 AS calls, sum(total_ms)::float8 AS total_ms
         FROM strata_statement_history
        WHERE resolution = $1 AND bucket >= now() - make_interval(secs => $2::float8 / 1000)
          AND ($3::bigint IS NULL OR queryid = $3::bigint)
        GROUP BY bucket ORDER BY bucket`,
      [resolution, options.durationMs, options.queryid ?? null],
      { label: LABEL },
    )
    return {
      resolution,
      points: rows.map((r) => ({
        bucket: r.bucket.toISOString(),
        calls: r.calls,
        totalMs: round(r.total_ms),
        meanMs: r.calls ? round(r.total_ms / r.calls) : 0,
      })),
    }
  }

  /**
   * Statements whose mean time over the last hour (minute buckets) is at least
   * `regressionFactor` × their baseline mean (hourly buckets of the 7 days before), with at
   * least `minCalls` recent calls.
   */
  async regressions(options: { minCalls?: number; now?: Date } = {}): Promise<Regression[]> {
    const { rows } = await this.#db.query<{
      queryid: string
      query: string
      recent_calls: number
      recent_mean: number
      base_mean: number
    }>(
      `WITH recent AS (
         SELECT queryid, max(query) AS query, sum(calls)::float8 AS calls, sum(total_ms)::float8 AS ms
           FROM strata_statement_history
          WHERE resolution = 'minute' AND bucket >= $1::timestamptz - interval '1 hour'
          GROUP BY queryid),
       base AS (
         SELECT queryid, sum(calls)::float8 AS calls, sum(total_ms)::float8 AS ms
           FROM strata_statement_history
          WHERE resolution = 'hour' AND bucket < date_trunc('hour', $1::timestamptz - interval '1 hour')
            AND bucket >= $1::timestamptz - interval '7 days'
          GROUP BY queryid)
       SELECT r.queryid::text AS queryid, r.query, r.calls AS recent_calls,
              r.ms / r.calls AS recent_mean, b.ms / b.calls AS base_mean
         FROM recent r JOIN base b USING (queryid)
        WHERE r.calls >= $2 AND b.calls > 0 AND r.ms / r.calls >= $3 * (b.ms / b.calls)
        ORDER BY (r.ms / r.calls) / nullif(b.ms / b.calls, 0) DESC`,
      [options.now ?? new Date(), options.minCalls ?? 10, this.#regressionFactor],
      { label: LABEL },
    )
    return rows.map((r) => ({
      queryid: r.queryid,
      query: r.query,
      recentMeanMs: round(r.recent_mean),
      baselineMeanMs: round(r.base_mean),
      factor: round(r.recent_mean / Math.max(r.base_mean, 1e-9), 2),
      recentCalls: r.recent_calls,
    }))
  }

  /** Samples every `sampleIntervalMs` (unref'd timer; stopped by `db.close()`). */
  startSampler(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => {
      this.sample().catch((err: unknown) =>
        this.#logger.warn({ err }, 'pg_stat_statements sample failed'),
      )
    }, this.#intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }
}

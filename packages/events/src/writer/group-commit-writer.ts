import {
  parseDuration,
  silentLogger,
  type Duration,
  type Logger,
  type StrataError,
} from '@strata/core'
import type { LockProvider } from '@strata/lock'
import { isDataError, isTransientDbError, pgErrors, sqlState, type Database } from '@strata/pg'
import type { PoolClient } from 'pg'
import { eventsErrors } from '../errors.js'
import { WRITER_DEFAULTS } from '../options.js'
import { runExclusive } from '../run-exclusive.js'
import type { EventRow } from '../types.js'
import { FlushWriter } from './flush-writer.js'
import { PartitionManager } from './partitions.js'

/** The `lock` option's key for maintenance passes. */
export const WRITER_MAINTENANCE_LOCK = 'events:maintenance'

/** What one maintenance pass did: partitions created, partitions dropped past retention. */
export interface MaintenanceResult {
  created: number
  dropped: string[]
}

/** What happened to one row: stored, recognised as a repeat, or refused by Postgres. */
export type RowResult =
  { status: 'inserted' } | { status: 'duplicate' } | { status: 'rejected'; error: StrataError }

export interface GroupCommitWriterOptions {
  /** Rows per flush transaction. @defaultValue 5000 */
  maxBatchRows?: number
  /** How long a flush waits to gather rows while another flush is running. @defaultValue '2ms' */
  flushInterval?: Duration
  /** Flush transactions in flight at once (each holds one connection). @defaultValue 2 */
  maxConcurrentFlushes?: number
  /** Rows waiting in memory before new writes are refused with 503. @defaultValue 50000 */
  maxQueueRows?: number
  /** How long a flush retries transient database errors before failing its waiters. @defaultValue '3s' */
  retryWindow?: Duration
  /** After a flush failed on an unreachable database, refuse new writes for this long. @defaultValue '1s' */
  unavailableCooldown?: Duration
  /** Flushes with more rows than this COPY them (dedup keys optimistically); smaller ones go as one round trip (one parameterised statement). Queues above twice this are split between free flush slots. @defaultValue 500 */
  copyThreshold?: number
  /** Raw event partitions entirely older than this are dropped by maintain(); keep it equal to the validator's maxPast. @defaultValue '730d' */
  retention?: Duration
  /** Keep partitions this many months ahead. @defaultValue 2 */
  partitionsAhead?: number
  /**
   * Shared lock for maintain(): each pass first takes `events:maintenance` (without waiting)
   * and is skipped while another instance holds it, so one instance at a time runs it. Without
   * it every instance runs maintenance (each step is idempotent).
   */
  lock?: LockProvider
  logger?: Logger
  /** Called after each committed flush (metrics): rows written and wall time in ms. */
  onFlush?: (rows: number, ms: number) => void
  /** Test seam: runs inside each flush transaction right before COMMIT. */
  beforeCommit?: (client: PoolClient) => Promise<void>
}

export interface WriterStats {
  queuedRows: number
  inFlightFlushes: number
  flushes: number
  inserted: number
  duplicates: number
  rejected: number
  retries: number
  failedFlushes: number
  refusedOverloaded: number
  refusedUnavailable: number
}

interface Pending {
  rows: EventRow[]
  results: (RowResult | undefined)[]
  resolve(results: RowResult[]): void
  reject(err: unknown): void
}

interface Entry {
  row: EventRow
  pending: Pending
  index: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function errorMessage(err: unknown): string {
  let e: unknown = err
  // The innermost message is Postgres' own, the clearest for a per-row report.
  while (e instanceof Error && e.cause instanceof Error) e = e.cause
  return e instanceof Error ? e.message : String(err)
}

// A COPY stream cut by a dying connection can surface as a stream error rather than a pg one.
const STREAM_CUT = new Set([
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
  'EPIPE',
  'ECONNRESET',
])

/** Worth retrying: the database went away or asked us to retry, not something in the rows. */
function isTransient(err: unknown): boolean {
  if (isTransientDbError(err)) return true
  for (let e: unknown = err, i = 0; i < 4 && e instanceof Error; e = e.cause, i++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && STREAM_CUT.has(code)) return true
  }
  return false
}

/**
 * The database is there but could not do the flush in time (statement timeout, out of
 * resources, a lock it could not get): retrying at once would meet the same wall, and splitting
 * the flush would multiply the wait, but nothing was written, so the client may retry later.
 */
function isBusy(err: unknown): boolean {
  if (pgErrors.is(err) && err.code === 'STRATA_DB_TIMEOUT') return true
  const state = sqlState(err)
  return state === '57014' || state === '55P03' || state?.startsWith('53') === true
}

function isMissingPartition(err: unknown): boolean {
  return sqlState(err) === '23514' && /no partition of relation/i.test(errorMessage(err))
}

/**
 * Group commit: callers hand over validated rows and wait; a flusher takes everything queued
 * (up to `maxBatchRows`), writes it in ONE transaction — dedup keys, COPY into the event
 * tables, rollups, user bitmaps — and resolves the callers only after COMMIT. A login's
 * sessionId is stored as an attribute of the row; it never creates or extends a session
 * (sessions are made with the project's admin key, see SessionStore). Under load, rows
 * queue while a flush runs, so batches grow with the load and per-row cost falls.
 *
 * Guarantees: a resolved write is committed; nothing queued is dropped (a flush either commits,
 * or rejects its callers so they can answer 503 and the client retries — dedup makes retries
 * safe); a row Postgres refuses is isolated by splitting the batch and reported alone.
 */
export class GroupCommitWriter {
  readonly #db: Database
  readonly #o: {
    maxBatchRows: number
    flushIntervalMs: number
    maxConcurrentFlushes: number
    maxQueueRows: number
    retryWindowMs: number
    unavailableCooldownMs: number
    partitionsAhead: number
    copyThreshold: number
    retentionMs: number
  }
  readonly #log: Logger
  readonly #onFlush: ((rows: number, ms: number) => void) | undefined
  readonly #lock: LockProvider | undefined
  readonly #partitions = new PartitionManager()
  readonly #flushWriter: FlushWriter
  #queue: Pending[] = []
  #queuedRows = 0
  #inFlight = 0
  #timer: NodeJS.Timeout | null = null
  #immediate: NodeJS.Immediate | null = null
  #maintenance: NodeJS.Timeout | null = null
  #downUntil = 0
  #closed = false
  #drained: (() => void) | null = null
  #stats = {
    flushes: 0,
    inserted: 0,
    duplicates: 0,
    rejected: 0,
    retries: 0,
    failedFlushes: 0,
    refusedOverloaded: 0,
    refusedUnavailable: 0,
  }

  constructor(db: Database, options: GroupCommitWriterOptions = {}) {
    const o = { ...WRITER_DEFAULTS, ...options }
    this.#db = db
    this.#o = Object.freeze({
      maxBatchRows: o.maxBatchRows,
      flushIntervalMs: parseDuration(o.flushInterval, 'flushInterval'),
      maxConcurrentFlushes: Math.max(1, o.maxConcurrentFlushes),
      maxQueueRows: o.maxQueueRows,
      retryWindowMs: parseDuration(o.retryWindow, 'retryWindow'),
      unavailableCooldownMs: parseDuration(o.unavailableCooldown, 'unavailableCooldown'),
      partitionsAhead: o.partitionsAhead,
      copyThreshold: o.copyThreshold,
      retentionMs: parseDuration(o.retention, 'retention'),
    })
    this.#log = o.logger ?? silentLogger
    this.#onFlush = o.onFlush
    this.#lock = o.lock
    this.#flushWriter = new FlushWriter(db, {
      partitions: this.#partitions,
      copyThreshold: this.#o.copyThreshold,
      beforeCommit: o.beforeCommit,
    })
  }

  /**
   * Runs maintenance now (partitions ahead, retention) and every hour after. The schedule is
   * set up first, so a failed first pass (database not reachable yet) is retried an hour later;
   * partitions are also created on demand by flushes in the meantime.
   */
  async start(): Promise<void> {
    this.#maintenance ??= setInterval(() => {
      this.maintain().catch((err: unknown) => this.#log.warn({ err }, 'event maintenance failed'))
    }, 3_600_000).unref()
    await this.maintain()
  }

  /**
   * One maintenance pass: partitions ahead, then retention (drop partitions older than
   * `retention`, trim old dedup keys). Safe on every instance at once. Returns what it created
   * and dropped, or null when it was skipped because another instance holds the `lock`.
   */
  maintain(now = Date.now()): Promise<MaintenanceResult | null> {
    return runExclusive(this.#lock, WRITER_MAINTENANCE_LOCK, () => this.#maintain(now))
  }

  async #maintain(now: number): Promise<MaintenanceResult> {
    const created = await this.#partitions.ensureAhead(this.#db, now, this.#o.partitionsAhead)
    if (created) this.#log.info({ created }, 'created event partitions')
    const res = await this.#db.query<{ dropped: string[] }>(
      'SELECT strata_events_apply_retention($1) AS dropped',
      [new Date(now - this.#o.retentionMs).toISOString()],
      { label: 'events.retention' },
    )
    const dropped = res.rows[0]?.dropped ?? []
    if (dropped.length) {
      this.#partitions.reset()
      this.#log.info({ dropped }, 'dropped event partitions past retention')
    }
    return { created, dropped }
  }

  /**
   * Queues rows and resolves with one result per row once they are committed. Rejects (for the
   * whole call) with STRATA_INGEST_OVERLOADED when the buffer is full, STRATA_DB_UNAVAILABLE when
   * the database is unreachable, STRATA_INGEST_CLOSED after close(): all mean "retry later".
   */
  write(rows: EventRow[]): Promise<RowResult[]> {
    if (rows.length === 0) return Promise.resolve([])
    if (this.#closed) return Promise.reject(eventsErrors.create('STRATA_INGEST_CLOSED'))
    if (Date.now() < this.#downUntil) {
      this.#stats.refusedUnavailable++
      return Promise.reject(
        pgErrors.create('STRATA_DB_UNAVAILABLE', {
          message: 'Database is unavailable; events were not accepted, retry later',
          details: { retryAfterSeconds: Math.ceil(this.#o.unavailableCooldownMs / 1000) },
        }),
      )
    }
    if (this.#queuedRows + rows.length > this.#o.maxQueueRows) {
      this.#stats.refusedOverloaded++
      return Promise.reject(
        eventsErrors.create('STRATA_INGEST_OVERLOADED', {
          details: {
            queuedRows: this.#queuedRows,
            maxQueueRows: this.#o.maxQueueRows,
            retryAfterSeconds: 1,
          },
        }),
      )
    }
    return new Promise<RowResult[]>((resolve, reject) => {
      this.#queue.push({ rows, results: new Array(rows.length), resolve, reject })
      this.#queuedRows += rows.length
      this.#schedule()
    })
  }

  stats(): WriterStats {
    return { queuedRows: this.#queuedRows, inFlightFlushes: this.#inFlight, ...this.#stats }
  }

  /** Stops accepting writes, flushes everything queued and waits for in-flight flushes (SIGTERM). */
  async close(): Promise<void> {
    this.#closed = true
    if (this.#maintenance) clearInterval(this.#maintenance)
    this.#maintenance = null
    if (this.#queue.length === 0 && this.#inFlight === 0) return
    const drained = new Promise<void>((resolve) => (this.#drained = resolve))
    this.#startFlushes()
    await drained
  }

  #schedule(): void {
    if (this.#queue.length === 0 || this.#inFlight >= this.#o.maxConcurrentFlushes) return
    if (this.#queuedRows >= this.#o.maxBatchRows || this.#closed) return this.#startFlushes()
    if (this.#timer || this.#immediate) return
    if (this.#inFlight === 0) {
      // Idle: flush after the current I/O phase, gathering whatever else arrived with it.
      this.#immediate = setImmediate(() => {
        this.#immediate = null
        this.#startFlushes()
      })
    } else {
      this.#timer = setTimeout(() => {
        this.#timer = null
        this.#startFlushes()
      }, this.#o.flushIntervalMs)
    }
  }

  #startFlushes(): void {
    if (this.#timer) clearTimeout(this.#timer)
    if (this.#immediate) clearImmediate(this.#immediate)
    this.#timer = null
    this.#immediate = null
    // A large queue is shared between the free flush slots, so two backends (two cores) work on
    // it at once instead of one taking everything while the other idles: under closed-loop load
    // (clients waiting for their answers) nothing else arrives until that one flush commits.
    // Small queues stay whole: per-flush costs (round trip, COMMIT) dominate there.
    const free = this.#o.maxConcurrentFlushes - this.#inFlight
    const share =
      free > 1 && this.#queuedRows > 2 * this.#o.copyThreshold
        ? Math.min(this.#o.maxBatchRows, Math.ceil(this.#queuedRows / free))
        : this.#o.maxBatchRows
    while (this.#queue.length > 0 && this.#inFlight < this.#o.maxConcurrentFlushes) {
      const batch: Pending[] = []
      let rows = 0
      // Whole requests only, so one request's rows commit together.
      while (this.#queue.length > 0) {
        const next = this.#queue[0]!
        if (batch.length > 0 && rows + next.rows.length > share) break
        batch.push(this.#queue.shift()!)
        rows += next.rows.length
      }
      this.#queuedRows -= rows
      this.#inFlight++
      void this.#flush(batch).finally(() => {
        this.#inFlight--
        if (this.#queue.length > 0) this.#schedule()
        else if (this.#inFlight === 0 && this.#drained) this.#drained()
      })
    }
  }

  async #flush(batch: Pending[]): Promise<void> {
    const entries: Entry[] = []
    for (const pending of batch)
      for (let i = 0; i < pending.rows.length; i++)
        // A row with a result was committed (or rejected) by an earlier part of this flush.
        if (pending.results[i] === undefined)
          entries.push({ row: pending.rows[i]!, pending, index: i })
    if (entries.length === 0) {
      for (const p of batch) p.resolve(p.results as RowResult[])
      return
    }
    const started = performance.now()
    try {
      await this.#writeIsolating(entries)
      this.#stats.flushes++
      this.#onFlush?.(entries.length, performance.now() - started)
      for (const p of batch) p.resolve(p.results as RowResult[])
    } catch (err) {
      // A failure of the whole flush that is neither the database being away nor one row's
      // data (a statement too large, a client-side error building it) may come from one
      // request: split by request, so only that one fails and the others (other projects')
      // still commit.
      const retryable = isTransient(err) || isBusy(err)
      if (batch.length > 1 && !retryable) {
        this.#log.debug({ err, requests: batch.length }, 'ingest flush failed; splitting it')
        const mid = batch.length >> 1
        await this.#flush(batch.slice(0, mid))
        await this.#flush(batch.slice(mid))
        return
      }
      this.#stats.failedFlushes++
      this.#log.warn({ err, rows: entries.length }, 'ingest flush failed')
      const out = retryable
        ? pgErrors.create('STRATA_DB_UNAVAILABLE', {
            message: 'Database is unavailable; events were not accepted, retry later',
            details: { retryAfterSeconds: Math.ceil(this.#o.unavailableCooldownMs / 1000) },
            cause: err,
          })
        : eventsErrors.create('STRATA_INGEST_FAILED', {
            message: `Events could not be written: ${errorMessage(err)}`,
            cause: err,
          })
      for (const p of batch) p.reject(out)
    }
  }

  /** Writes entries, retrying transient failures and splitting on data errors. */
  async #writeIsolating(entries: Entry[]): Promise<void> {
    const started = Date.now()
    let attempt = 0
    let partitionRetry = false
    for (;;) {
      try {
        await this.#writeOnce(entries)
        this.#downUntil = 0
        return
      } catch (err) {
        if (isTransient(err)) {
          if (Date.now() - started + this.#backoff(attempt) > this.#o.retryWindowMs) {
            this.#downUntil = Date.now() + this.#o.unavailableCooldownMs
            throw err
          }
          this.#stats.retries++
          this.#log.debug({ err, attempt }, 'ingest flush retry')
          await sleep(this.#backoff(attempt++))
          continue
        }
        if (isMissingPartition(err) && !partitionRetry) {
          partitionRetry = true
          this.#partitions.reset()
          continue
        }
        if (isDataError(err)) {
          if (entries.length === 1) {
            const e = entries[0]!
            e.pending.results[e.index] = {
              status: 'rejected',
              error: eventsErrors.create('STRATA_EVENT_REJECTED_BY_DB', {
                message: `PostgreSQL rejected this event: ${errorMessage(err)}`,
                details: { sqlState: sqlState(err) },
              }),
            }
            this.#stats.rejected++
            return
          }
          // Bisect: O(k log n) transactions to isolate k bad rows; neighbours still commit.
          const mid = entries.length >> 1
          await this.#writeIsolating(entries.slice(0, mid))
          await this.#writeIsolating(entries.slice(mid))
          return
        }
        throw err
      }
    }
  }

  #backoff(attempt: number): number {
    return Math.min(1000, 25 * 2 ** attempt)
  }

  async #writeOnce(entries: Entry[]): Promise<void> {
    const outcome = await this.#flushWriter.write(entries.map((e) => e.row))
    let inserted = 0
    outcome.forEach((status, i) => {
      const e = entries[i]!
      e.pending.results[e.index] = { status }
      if (status === 'inserted') inserted++
    })
    this.#stats.inserted += inserted
    this.#stats.duplicates += entries.length - inserted
  }
}

import type { Logger } from '@strata/core'
import { pgErrors } from '../errors.js'
import { normalizeSql } from '../monitor/normalize-sql.js'
import type { Queryable } from '../queryable.js'
import type { LeakReport, LeakTracker } from './leak-tracker.js'

export interface AutoTerminateOptions {
  /** Cancel (pg_cancel_backend) or terminate (pg_terminate_backend) a query of ours running longer. 0 = off. @defaultValue 0 */
  longRunningMs?: number
  /** Terminate a session of ours idle in transaction longer. 0 = off. @defaultValue 0 */
  idleInTransactionMs?: number
  /** What to do with long-running queries; idle-in-transaction sessions are always terminated. @defaultValue 'cancel' */
  action?: 'cancel' | 'terminate'
  /** How often the check runs when started by the database. @defaultValue 10000 */
  intervalMs?: number
}

export interface HealthOptions {
  /** A withClient/transaction client held longer than this is a leak. @defaultValue 30000 */
  leakThresholdMs?: number
  /** Capture the acquire site's stack trace (a few µs per checkout). From DATABASE_LEAK_STACKS via `databaseOptionsFromEnv` or the service config. @defaultValue false */
  leakStacks?: boolean
  /** Queries running longer than this are listed by `longRunning()`. @defaultValue 5000 */
  longRunningMs?: number
  /** Optional automatic cancel/terminate; only ever touches this application's client backends in this database. */
  autoTerminate?: AutoTerminateOptions
}

export interface SessionInfo {
  pid: number
  state: string
  applicationName: string
  user: string
  clientAddr: string | null
  /** ms since the query started (active) or since the state changed (idle in transaction). */
  durationMs: number
  /** Normalized query text (literals → $n). */
  query: string
  waitEventType: string | null
  waitEvent: string | null
  /** When this session's transaction began. */
  xactStart: string | null
}

export interface LongRunningReport {
  thresholdMs: number
  active: SessionInfo[]
  idleInTransaction: SessionInfo[]
}

export interface TerminateResult {
  pid: number
  action: 'cancel' | 'terminate'
  done: boolean
}

const LABEL = 'strata:health'

// Only this application's client backends in this database, never ourselves: the predicate every
// listing and every cancel/terminate goes through (autovacuum, walsenders and other
// applications' sessions have another backend_type or application_name).
const OURS = `datname = current_database()
  AND backend_type = 'client backend'
  AND application_name = $1
  AND pid <> pg_backend_pid()`

interface ActivityRow {
  pid: number
  state: string
  application_name: string
  usename: string
  client_addr: string | null
  duration_ms: number
  query: string
  wait_event_type: string | null
  wait_event: string | null
  xact_start: Date | null
}

function session(r: ActivityRow): SessionInfo {
  return {
    pid: r.pid,
    state: r.state,
    applicationName: r.application_name,
    user: r.usename,
    clientAddr: r.client_addr,
    durationMs: Math.round(r.duration_ms),
    query: normalizeSql(r.query ?? '').text,
    waitEventType: r.wait_event_type,
    waitEvent: r.wait_event,
    xactStart: r.xact_start ? r.xact_start.toISOString() : null,
  }
}

/** `db.health`: leaks, long-running queries and idle-in-transaction sessions of this application. */
export class SessionHealth {
  readonly applicationName: string
  readonly #db: Queryable
  readonly #leaks: LeakTracker
  readonly #longRunningMs: number
  readonly #auto: Required<AutoTerminateOptions>
  readonly #logger: Logger
  #timer: NodeJS.Timeout | undefined
  #terminated = 0

  constructor(
    db: Queryable,
    leaks: LeakTracker,
    applicationName: string,
    options: { longRunningMs: number; autoTerminate: Required<AutoTerminateOptions> },
    logger: Logger,
  ) {
    this.#db = db
    this.#leaks = leaks
    this.applicationName = applicationName
    this.#longRunningMs = options.longRunningMs
    this.#auto = options.autoTerminate
    this.#logger = logger
  }

  /** Clients held longer than the leak threshold (or `minHeldMs`), with where they were acquired. */
  async leaks(options: { minHeldMs?: number } = {}): Promise<LeakReport[]> {
    return this.#leaks.leaks(options.minHeldMs)
  }

  /** Checked-out clients right now (transaction / withClient). */
  get checkedOut(): number {
    return this.#leaks.held
  }

  /** This application's queries running longer than the threshold and sessions idle in transaction. */
  async longRunning(options: { minDurationMs?: number } = {}): Promise<LongRunningReport> {
    const threshold = options.minDurationMs ?? this.#longRunningMs
    const { rows } = await this.#db.query<ActivityRow>(
      `SELECT pid, state, application_name, usename, client_addr::text AS client_addr, query,
              wait_event_type, wait_event, xact_start,
              extract(epoch FROM (clock_timestamp() -
                CASE WHEN state = 'active' THEN query_start ELSE state_change END)) * 1000 AS duration_ms
         FROM pg_stat_activity
        WHERE ${OURS}
          AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')
          AND clock_timestamp() - CASE WHEN state = 'active' THEN query_start ELSE state_change END
              >= make_interval(secs => $2::float8 / 1000)
        ORDER BY duration_ms DESC`,
      [this.applicationName, threshold],
      { label: LABEL },
    )
    const all = rows.map(session)
    return {
      thresholdMs: threshold,
      active: all.filter((s) => s.state === 'active'),
      idleInTransaction: all.filter((s) => s.state !== 'active'),
    }
  }

  /**
   * Cancels the query of (or terminates) one of this application's sessions. Refuses with
   * STRATA_DB_NOT_OUR_SESSION a pid that is not a client backend of this application in this
   * database (other applications, autovacuum, replication, ourselves): the check and the signal
   * happen in one statement, so the pid cannot be swapped in between.
   */
  async terminate(
    pid: number,
    options: { action?: 'cancel' | 'terminate' } = {},
  ): Promise<TerminateResult> {
    const action = options.action ?? 'terminate'
    if (!Number.isInteger(pid) || pid <= 0)
      throw pgErrors.create('STRATA_DB_NOT_OUR_SESSION', {
        message: `pid must be a positive integer, got ${JSON.stringify(pid)}`,
        details: { pid },
      })
    const fn = action === 'cancel' ? 'pg_cancel_backend' : 'pg_terminate_backend'
    const { rows } = await this.#db.query<{ done: boolean }>(
      `SELECT ${fn}(pid) AS done FROM pg_stat_activity WHERE pid = $2 AND ${OURS}`,
      [this.applicationName, pid],
      { label: LABEL },
    )
    if (rows.length === 0)
      throw pgErrors.create('STRATA_DB_NOT_OUR_SESSION', {
        message: `pid ${pid} is not a session of application "${this.applicationName}" in this database; refusing to touch it`,
        details: { pid, applicationName: this.applicationName },
      })
    this.#terminated++
    this.#logger.warn({ pid, action }, 'database session signalled')
    return { pid, action, done: rows[0]!.done }
  }

  /**
   * One pass of the automatic policy (what the timer runs): cancels/terminates this
   * application's queries over `autoTerminate.longRunningMs` and terminates its sessions idle
   * in transaction over `autoTerminate.idleInTransactionMs`. Returns what it signalled.
   */
  async enforce(): Promise<TerminateResult[]> {
    const { longRunningMs, idleInTransactionMs, action } = this.#auto
    if (!longRunningMs && !idleInTransactionMs) return []
    const out: TerminateResult[] = []
    const min = Math.min(...[longRunningMs, idleInTransactionMs].filter((n) => n > 0))
    const report = await this.longRunning({ minDurationMs: min })
    const targets: [SessionInfo, 'cancel' | 'terminate'][] = []
    if (longRunningMs)
      for (const s of report.active) if (s.durationMs >= longRunningMs) targets.push([s, action])
    if (idleInTransactionMs)
      for (const s of report.idleInTransaction)
        if (s.durationMs >= idleInTransactionMs) targets.push([s, 'terminate'])
    for (const [s, a] of targets) {
      try {
        out.push(await this.terminate(s.pid, { action: a }))
      } catch (err) {
        // The session ended in between (or changed hands): nothing to do.
        if (!pgErrors.is(err, 'STRATA_DB_NOT_OUR_SESSION')) throw err
      }
    }
    return out
  }

  /** Sessions signalled since start (manual and automatic). */
  get terminatedCount(): number {
    return this.#terminated
  }

  /** Starts the automatic policy timer when configured (unref'd; stopped by `db.close()`). */
  start(): void {
    const { longRunningMs, idleInTransactionMs, intervalMs } = this.#auto
    if ((!longRunningMs && !idleInTransactionMs) || this.#timer) return
    this.#timer = setInterval(() => {
      this.enforce().catch((err: unknown) =>
        this.#logger.warn({ err }, 'automatic session check failed'),
      )
    }, intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }
}

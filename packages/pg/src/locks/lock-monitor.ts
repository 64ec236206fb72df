import { normalizeSql } from '../monitor/normalize-sql.js'
import type { Queryable } from '../queryable.js'

export interface LockSession {
  pid: number
  applicationName: string
  state: string
  /** Normalized query (literals → $n). */
  query: string
}

export interface BlockedPair {
  blocked: LockSession & {
    /** How long the blocked statement has been waiting (ms). */
    waitMs: number
    waitEventType: string | null
    waitEvent: string | null
  }
  blocking: LockSession & {
    /** Age of the blocking session's transaction (ms). */
    xactMs: number | null
  }
}

export interface LockContention {
  pairs: BlockedPair[]
  /** Distinct blocked sessions. */
  blockedSessions: number
  /** Longest wait among blocked sessions (ms). */
  maxWaitMs: number
  deadlocks: {
    /** pg_stat_database.deadlocks for this database (since the server's stats reset). */
    total: number
    /** Increase since this handle first looked. */
    sinceStart: number
  }
  /** Lock requests not granted, by lock type. */
  waitingByLockType: Record<string, number>
}

const LABEL = 'strata:locks'

interface PairRow {
  blocked_pid: number
  blocked_app: string
  blocked_state: string
  blocked_query: string
  wait_ms: number
  wait_event_type: string | null
  wait_event: string | null
  blocking_pid: number
  blocking_app: string
  blocking_state: string
  blocking_query: string
  blocking_xact_ms: number | null
}

/** `db.locks`: blocked/blocking pairs (pg_blocking_pids), waits and the deadlock counter. */
export class LockMonitor {
  readonly #db: Queryable
  #deadlockBaseline: number | undefined

  constructor(db: Queryable) {
    this.#db = db
  }

  /** Deadlocks detected in this database; the first call also sets the `sinceStart` baseline. */
  async deadlocks(): Promise<{ total: number; sinceStart: number }> {
    const { rows } = await this.#db.query<{ deadlocks: string }>(
      `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`,
      [],
      { label: LABEL },
    )
    const total = Number(rows[0]?.deadlocks ?? 0)
    this.#deadlockBaseline ??= total
    // A stats reset makes the counter smaller than the baseline: start over from it.
    if (total < this.#deadlockBaseline) this.#deadlockBaseline = total
    return { total, sinceStart: total - this.#deadlockBaseline }
  }

  async contention(): Promise<LockContention> {
    const [pairs, waiting, deadlocks] = await Promise.all([
      this.#db.query<PairRow>(
        `SELECT a.pid AS blocked_pid, a.application_name AS blocked_app, a.state AS blocked_state,
                a.query AS blocked_query, a.wait_event_type, a.wait_event,
                extract(epoch FROM clock_timestamp() - a.query_start) * 1000 AS wait_ms,
                b.pid AS blocking_pid, b.application_name AS blocking_app, b.state AS blocking_state,
                b.query AS blocking_query,
                extract(epoch FROM clock_timestamp() - b.xact_start) * 1000 AS blocking_xact_ms
           FROM pg_stat_activity a
           CROSS JOIN LATERAL unnest(pg_blocking_pids(a.pid)) AS bp(pid)
           JOIN pg_stat_activity b ON b.pid = bp.pid
          WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
          ORDER BY wait_ms DESC`,
        [],
        { label: LABEL },
      ),
      this.#db.query<{ locktype: string; n: number }>(
        `SELECT l.locktype, count(*)::int AS n
           FROM pg_locks l
          WHERE NOT l.granted
            AND (l.database IS NULL OR l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
          GROUP BY l.locktype`,
        [],
        { label: LABEL },
      ),
      this.deadlocks(),
    ])
    const list: BlockedPair[] = pairs.rows.map((r) => ({
      blocked: {
        pid: r.blocked_pid,
        applicationName: r.blocked_app,
        state: r.blocked_state,
        query: normalizeSql(r.blocked_query ?? '').text,
        waitMs: Math.round(r.wait_ms),
        waitEventType: r.wait_event_type,
        waitEvent: r.wait_event,
      },
      blocking: {
        pid: r.blocking_pid,
        applicationName: r.blocking_app,
        state: r.blocking_state,
        query: normalizeSql(r.blocking_query ?? '').text,
        xactMs: r.blocking_xact_ms === null ? null : Math.round(r.blocking_xact_ms),
      },
    }))
    return {
      pairs: list,
      blockedSessions: new Set(list.map((p) => p.blocked.pid)).size,
      maxWaitMs: list.reduce((m, p) => Math.max(m, p.blocked.waitMs), 0),
      deadlocks,
      waitingByLockType: Object.fromEntries(waiting.rows.map((r) => [r.locktype, r.n])),
    }
  }
}

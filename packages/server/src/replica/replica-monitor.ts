import type { Logger } from '@strata/core'
import type { Database } from '@strata/pg'
import { Gauge, Registry } from 'prom-client'

export interface ReplicaMonitorOptions {
  /** The primary: its `pg_current_wal_lsn()` is what the replica is measured against. */
  primary: Database
  /** The read replica (DATABASE_READ_URL). */
  replica: Database
  /** Past this lag (ms) reads go to the primary (STRATA_REPLICA_MAX_LAG). @defaultValue 10000 */
  maxLagMs?: number
  /** How often the lag is measured (ms). @defaultValue 1000 */
  intervalMs?: number
  /** Timeout of each check query (ms): a hung replica counts as down. @defaultValue 1000 */
  checkTimeoutMs?: number
  logger?: Logger
  /** Clock (tests). @defaultValue Date.now */
  now?: () => number
}

/** What the last check saw. */
export interface ReplicaState {
  /** `up`: answering (a standby, or a plain database when `standby` is false); `down`: not. */
  status: 'up' | 'down' | 'unknown'
  /** Whether the read database is a physical standby (pg_is_in_recovery()). */
  standby: boolean
  /** WAL bytes the replica has not replayed yet (0 when caught up); null when unknown. */
  lagBytes: number | null
  /** Seconds of commits the replica may be missing (0 when caught up); null when unknown. */
  lagSeconds: number | null
  /** Replay paused on the standby (pg_wal_replay_pause()). */
  replayPaused: boolean
  /** Where analytics read now. */
  readFrom: 'replica' | 'primary'
  /** Why reads go to the primary, when they do. */
  reason: 'down' | 'lagging' | null
  maxLagSeconds: number
  /** When the last check finished (ISO), null before the first. */
  checkedAt: string | null
}

const DEFAULTS = Object.freeze({
  maxLagMs: 10_000, // 10 s
  intervalMs: 1_000, // 1 s
  checkTimeoutMs: 1_000, // 1 s
})

/** Primary WAL positions kept to bound the lag when the replica's replay timestamp is stale. */
const MAX_SAMPLES = 600

/**
 * Measures the replica's replay lag every `intervalMs` and decides where analytics read.
 *
 * Lag in seconds is an upper bound on how old the newest commit missing on the replica can be:
 * 0 when the replica has replayed up to the primary's current WAL position (an idle primary
 * included, whatever `pg_last_xact_replay_timestamp()` says); otherwise the smaller of "now
 * minus the last replayed commit's time" and "now minus the last check at which the primary's
 * position was at or below what the replica has replayed". The second bound keeps a replica
 * that was idle for an hour from looking an hour behind on the first new commit.
 */
export class ReplicaMonitor {
  readonly #o: Required<Omit<ReplicaMonitorOptions, 'logger'>> & { logger?: Logger }
  /** (time the primary's position was read, position in bytes), oldest first. */
  readonly #samples: { at: number; lsn: bigint }[] = []
  /** strata_replica_up, strata_replica_lag_seconds, strata_replica_lag_bytes, strata_replica_reads. */
  readonly registry = new Registry()
  #state: ReplicaState
  #timer: NodeJS.Timeout | undefined
  #running: Promise<ReplicaState> | undefined
  #closed = false
  #started = false
  /** Bumped by markDown(): a check that started before it must not report the replica up. */
  #downs = 0

  constructor(options: ReplicaMonitorOptions) {
    this.#o = Object.freeze({ ...DEFAULTS, now: Date.now, ...options })
    this.#state = {
      status: 'unknown',
      standby: false,
      lagBytes: null,
      lagSeconds: null,
      replayPaused: false,
      // Until the first check: the primary, which is never behind.
      readFrom: 'primary',
      reason: null,
      maxLagSeconds: this.#o.maxLagMs / 1000,
      checkedAt: null,
    }
    const gauges: [string, string, (s: ReplicaState) => number | null][] = [
      ['strata_replica_up', 'The read replica answered the last lag check (1) or not (0)', (s) => (s.status === 'up' ? 1 : 0)],
      ['strata_replica_lag_seconds', 'Seconds of commits the read replica may be missing (NaN while down)', (s) => s.lagSeconds],
      ['strata_replica_lag_bytes', 'WAL bytes the read replica has not replayed (NaN while down)', (s) => s.lagBytes],
      ['strata_replica_reads', 'Analytics read the replica (1) or the primary (0)', (s) => (s.readFrom === 'replica' ? 1 : 0)],
    ] // prettier-ignore
    for (const [name, help, read] of gauges) {
      const state = () => this.#state
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          // NaN, not 0, while it is unknown: a down replica is not a caught-up one.
          this.set(read(state()) ?? NaN)
        },
      })
    }
  }

  /** The last check's result (no query). */
  get state(): ReplicaState {
    return this.#state
  }

  /** Runs a first check, then one every `intervalMs` until close(). */
  async start(): Promise<void> {
    if (this.#closed || this.#started) return
    this.#started = true
    await this.check()
    // close() during the first check: no timer.
    if (this.#closed) return
    const tick = () => {
      this.#timer = setTimeout(() => {
        void this.check().finally(() => {
          if (!this.#closed) tick()
        })
      }, this.#o.intervalMs)
      this.#timer.unref()
    }
    tick()
  }

  /** Stops the periodic check (idempotent). */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Reads were sent to the replica and it failed to connect: primary until the next check. */
  markDown(err: unknown): void {
    this.#downs++
    if (this.#state.status === 'down') return
    this.#o.logger?.warn({ err }, 'read replica failed: analytics read the primary')
    this.#state = { ...this.#state, status: 'down', readFrom: 'primary', reason: 'down' }
  }

  /** Measures the lag once (concurrent callers share the check) and returns the new state. */
  check(): Promise<ReplicaState> {
    return (this.#running ??= this.#check().finally(() => {
      this.#running = undefined
    }))
  }

  async #check(): Promise<ReplicaState> {
    const { primary, replica, checkTimeoutMs: timeoutMs, maxLagMs } = this.#o
    const downs = this.#downs
    let next: ReplicaState
    try {
      const at = this.#o.now()
      const {
        rows: [p],
      } = await primary.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`, [], {
        label: 'replica-lag',
        timeoutMs,
      })
      const {
        rows: [r],
      } = await replica.query<{
        standby: boolean
        behind: string | null
        replayed: string | null
        replay_age: number | null
        paused: boolean
      }>(
        `SELECT pg_is_in_recovery() AS standby,
                pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::bigint::text AS behind,
                pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint::text AS replayed,
                extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8
                  AS replay_age,
                CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END
                  AS paused`,
        [p!.lsn],
        { label: 'replica-lag', timeoutMs },
      )
      const primaryLsn = lsnBytes(p!.lsn)
      this.#samples.push({ at, lsn: primaryLsn })
      if (this.#samples.length > MAX_SAMPLES) this.#samples.shift()
      let lagBytes = 0
      let lagSeconds = 0
      if (r!.standby) {
        lagBytes = Math.max(0, Number(r!.behind ?? 0))
        if (lagBytes > 0) {
          const replayed = BigInt(r!.replayed ?? '0')
          const now = this.#o.now()
          let caughtUpAt: number | undefined
          for (const s of this.#samples) if (s.lsn <= replayed) caughtUpAt = s.at
          const bounds = [
            r!.replay_age === null ? Infinity : Math.max(0, r!.replay_age),
            // Never seen caught up: at least as old as the oldest sample.
            (now - (caughtUpAt ?? this.#samples[0]!.at)) / 1000,
          ]
          lagSeconds = Math.min(...bounds)
        }
      }
      const lagging = lagSeconds * 1000 > maxLagMs
      next = {
        status: 'up',
        standby: r!.standby,
        lagBytes,
        lagSeconds: Math.round(lagSeconds * 1000) / 1000,
        replayPaused: r!.paused,
        readFrom: lagging ? 'primary' : 'replica',
        reason: lagging ? 'lagging' : null,
        maxLagSeconds: maxLagMs / 1000,
        checkedAt: new Date(this.#o.now()).toISOString(),
      }
    } catch (err) {
      next = {
        ...this.#state,
        status: 'down',
        lagBytes: null,
        lagSeconds: null,
        readFrom: 'primary',
        reason: 'down',
        checkedAt: new Date(this.#o.now()).toISOString(),
      }
      if (this.#state.status !== 'down')
        this.#o.logger?.warn({ err }, 'read replica check failed: analytics read the primary')
    }
    // The replica failed a query while this check ran: the next check decides.
    if (downs !== this.#downs && next.status === 'up') return this.#state
    const before = this.#state
    if (next.readFrom !== before.readFrom && next.status === 'up')
      this.#o.logger?.info(
        { readFrom: next.readFrom, lagSeconds: next.lagSeconds, lagBytes: next.lagBytes },
        next.readFrom === 'replica'
          ? 'read replica caught up: analytics read it again'
          : 'read replica lags past STRATA_REPLICA_MAX_LAG: analytics read the primary',
      )
    this.#state = next
    return next
  }
}

/** `X/Y` (pg_lsn text) → byte position. */
function lsnBytes(lsn: string): bigint {
  const [hi, lo] = lsn.split('/')
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`)
}

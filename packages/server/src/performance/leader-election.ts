import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '@strata/core'
import { lockErrors, type Lock, type LockProvider } from '@strata/lock'

export interface LeaderElectionOptions {
  /** Lock key (the provider adds its prefix). */
  key: string
  /** Lock TTL; the watchdog of `using()` extends it every third (ms). @defaultValue 15000 */
  ttlMs?: number
  /** Pause between attempts while another instance leads (ms). @defaultValue ttlMs / 3 */
  retryMs?: number
  logger: Logger
}

/**
 * One leader among the instances sharing a lock backend: each instance keeps trying to take
 * the lock and, once it has it, holds it with `using()` (watchdog) until it is lost or the
 * election is closed, then tries again. A dead leader's lock expires after its TTL.
 */
export class LeaderElection {
  readonly #locks: LockProvider
  readonly #key: string
  readonly #ttlMs: number
  readonly #retryMs: number
  readonly #log: Logger
  readonly #stop = new AbortController()
  #lock: Lock | undefined
  #loop: Promise<void> | undefined

  constructor(locks: LockProvider, options: LeaderElectionOptions) {
    this.#locks = locks
    this.#key = options.key
    this.#ttlMs = options.ttlMs ?? 15_000
    this.#retryMs = options.retryMs ?? Math.round(this.#ttlMs / 3)
    this.#log = options.logger
  }

  /** Starts campaigning (idempotent). */
  start(): void {
    if (this.#stop.signal.aborted) return
    this.#loop ??= this.#run()
  }

  /**
   * The fencing token of the lock while this instance leads and the lock has not expired by
   * this process' clock; null otherwise. Read it right before acting as the leader.
   */
  get fence(): number | null {
    const l = this.#lock
    if (!l || !l.held || l.signal.aborted || Date.now() >= l.expiresAt) return null
    return l.fence
  }

  get isLeader(): boolean {
    return this.fence !== null
  }

  /** Stops campaigning and releases the lock when held, so another instance takes over at once. */
  async close(): Promise<void> {
    this.#stop.abort()
    await this.#loop
  }

  async #run(): Promise<void> {
    const stop = this.#stop.signal
    while (!stop.aborted) {
      try {
        await this.#locks.using(
          this.#key,
          this.#ttlMs,
          async (signal, lock) => {
            this.#lock = lock
            this.#log.info({ key: this.#key, fence: lock.fence }, 'leader: this instance')
            await new Promise<void>((resolve) => {
              const done = (): void => resolve()
              if (signal.aborted || stop.aborted) return resolve()
              signal.addEventListener('abort', done, { once: true })
              stop.addEventListener('abort', done, { once: true })
            })
            if (signal.aborted) this.#log.warn({ key: this.#key }, 'leader: lock lost')
          },
          { wait: 0 },
        )
      } catch (err) {
        // Another instance leads (NOT_ACQUIRED), or the lock was lost / the provider closed:
        // try again later. Anything else (Redis away) is worth a line in the log.
        if (
          !lockErrors.is(err, 'STRATA_LOCK_NOT_ACQUIRED') &&
          !lockErrors.is(err, 'STRATA_LOCK_LOST') &&
          !lockErrors.is(err, 'STRATA_LOCK_CLOSED')
        )
          this.#log.warn({ err, key: this.#key }, 'leader election attempt failed')
      } finally {
        this.#lock = undefined
      }
      await sleep(this.#retryMs, undefined, { signal: stop }).catch(() => {})
    }
  }
}

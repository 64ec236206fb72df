import type { Duration } from '@strata/core'
import type { RetryOptions } from './options.js'

/** A held lock. Obtained from `LockProvider.acquire`; the owner token never leaves this object. */
export interface Lock {
  /** The key as the caller gave it (without prefix). */
  readonly key: string
  /** Random owner token; only this owner can extend or release. */
  readonly owner: string
  /**
   * Fencing token: strictly increases with every acquisition of this key. Pass it along with
   * writes to the protected resource and reject writes carrying a smaller token than the last
   * one seen (e.g. `UPDATE … WHERE fence < $token`), so a holder that paused past its TTL
   * cannot overwrite the work of the next holder.
   */
  readonly fence: number
  /** Epoch ms after which this process considers the lock lost (conservative). */
  readonly expiresAt: number
  /** False once released or lost. */
  readonly held: boolean
  /** Aborted (reason: STRATA_LOCK_LOST) when the lock expires or is found taken over. */
  readonly signal: AbortSignal
  /** Resets the TTL (default: the TTL it was acquired with). Throws STRATA_LOCK_NOT_HELD if lost. */
  extend(ttl?: Duration): Promise<void>
  /**
   * Releases the lock if this owner still holds it. Idempotent after a successful release;
   * throws STRATA_LOCK_NOT_HELD when the lock was lost (expired or taken over) meanwhile.
   */
  release(): Promise<void>
}

export interface AcquireOptions extends RetryOptions {
  /** Stops waiting (STRATA_LOCK_ABORTED) when aborted. */
  signal?: AbortSignal
}

/** Callback of `using`: `signal` aborts if the lock is lost while it runs. */
export type LockedFunction<T> = (signal: AbortSignal, lock: Lock) => Promise<T> | T

/** What both the Redis and the Postgres implementation offer. */
export interface LockProvider {
  readonly kind: 'redis' | 'postgres'
  /**
   * Acquires `key` for `ttl`, retrying with jittered exponential back-off while another owner
   * holds it, for at most `wait` / `attempts`. Throws STRATA_LOCK_NOT_ACQUIRED when it gives up.
   */
  acquire(key: string, ttl: Duration, opts?: AcquireOptions): Promise<Lock>
  /** Same as `lock.extend(ttl)`. */
  extend(lock: Lock, ttl?: Duration): Promise<void>
  /** Same as `lock.release()`. */
  release(lock: Lock): Promise<void>
  /**
   * Runs `fn` while holding `key`: extends the lock every ttl/3 (watchdog), aborts `signal` if
   * the lock is lost, and releases it when `fn` settles (also on throw). If the lock was lost
   * while `fn` ran and `fn` still returned normally, throws STRATA_LOCK_LOST: the work was not
   * protected.
   *
   * ### Examples
   * ```ts
   * await locks.using('import:42', '30s', async (signal, lock) => {
   *   await db.query('UPDATE jobs SET state = $1 WHERE id = 42 AND fence < $2', ['running', lock.fence])
   * })
   * ```
   */
  using<T>(key: string, ttl: Duration, fn: LockedFunction<T>, opts?: AcquireOptions): Promise<T>
  /** Stops timers of held locks and closes connections this provider opened itself. */
  close(): Promise<void>
}

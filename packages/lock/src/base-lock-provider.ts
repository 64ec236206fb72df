import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Duration, Logger } from '@strata/core'
import { lockErrors } from './errors.js'
import { LockHandle, wrapBackend } from './lock-handle.js'
import type { LockBackend } from './lock-handle.js'
import type { AcquireOptions, Lock, LockedFunction, LockProvider } from './lock-provider.js'
import { checkKey, lockDefaults, parseTtl, resolveRetry } from './options.js'
import type { ResolvedRetry } from './options.js'

/** Result of one acquisition attempt. */
export type AttemptResult =
  | { acquired: true; fence: number }
  | {
      acquired: false
      /** when the backend knows the holder's remaining TTL */ retryAfterMs?: number
    }

/**
 * Shared behaviour of both backends: retry loop, handle bookkeeping, `using` with a watchdog.
 * Backends implement one attempt plus the LockBackend operations.
 */
export abstract class BaseLockProvider implements LockProvider {
  abstract readonly kind: 'redis' | 'postgres'
  protected readonly logger: Logger
  #retry: ResolvedRetry
  #held = new Set<LockHandle>()
  #closed = false

  constructor(logger: Logger, retry: ResolvedRetry) {
    this.logger = logger
    this.#retry = retry
  }

  protected abstract attempt(key: string, owner: string, ttlMs: number): Promise<AttemptResult>
  protected abstract readonly backend: LockBackend
  protected abstract closeBackend(): Promise<void>

  async acquire(key: string, ttl: Duration, opts?: AcquireOptions): Promise<Lock> {
    checkKey(key)
    const ttlMs = parseTtl(ttl)
    const retry = resolveRetry(this.#retry, opts)
    const signal = opts?.signal
    const owner = randomBytes(16).toString('base64url')
    const start = Date.now()
    const deadline = start + retry.waitMs
    for (let attempt = 1; ; attempt++) {
      this.#assertOpen()
      if (signal?.aborted) throw aborted(key, signal)
      const startedAt = Date.now()
      let result: AttemptResult
      try {
        result = await this.attempt(key, owner, ttlMs)
      } catch (cause) {
        throw wrapBackend(cause, key)
      }
      if (result.acquired) {
        const handle = new LockHandle({
          key,
          owner,
          fence: result.fence,
          ttlMs,
          startedAt,
          backend: this.backend,
          logger: this.logger,
          onSettle: (h) => this.#held.delete(h),
        })
        this.#held.add(handle)
        if (this.#closed) {
          await handle.release().catch(() => {})
          this.#assertOpen()
        }
        return handle
      }
      const now = Date.now()
      if (attempt >= retry.attempts || now >= deadline)
        throw lockErrors.create('STRATA_LOCK_NOT_ACQUIRED', {
          message: `Lock ${JSON.stringify(key)} is held by another owner (gave up after ${attempt} attempt(s), ${now - start} ms)`,
          details: { key, attempts: attempt },
        })
      // Exponential back-off with "equal jitter" so contenders spread out instead of retrying in
      // lock-step; never sleep much past the holder's known expiry or our own deadline.
      const exp = Math.min(retry.maxDelayMs, retry.minDelayMs * 2 ** Math.min(attempt - 1, 20))
      let delay = exp / 2 + Math.random() * (exp / 2)
      if (result.retryAfterMs !== undefined)
        delay = Math.min(
          delay,
          result.retryAfterMs + Math.random() * Math.min(retry.minDelayMs, 25),
        )
      delay = Math.max(1, Math.min(delay, deadline - now))
      try {
        await sleep(delay, undefined, signal ? { signal } : undefined)
      } catch {
        throw aborted(key, signal)
      }
    }
  }

  extend(lock: Lock, ttl?: Duration): Promise<void> {
    return lock.extend(ttl)
  }

  release(lock: Lock): Promise<void> {
    return lock.release()
  }

  async using<T>(
    key: string,
    ttl: Duration,
    fn: LockedFunction<T>,
    opts?: AcquireOptions,
  ): Promise<T> {
    const ttlMs = parseTtl(ttl)
    const lock = await this.acquire(key, ttlMs, opts)
    let extending: Promise<void> | undefined
    // Watchdog: extend well before expiry. A failed extend because the lock is gone aborts the
    // signal (LockHandle.lose); a backend error is left to the local expiry timer, which
    // declares the lock lost only once the TTL has really passed without a successful extend.
    const watchdog = setInterval(
      () => {
        if (extending || !lock.held) return
        extending = lock
          .extend(ttlMs)
          .catch((err: unknown) => {
            this.logger.warn({ err, key }, 'lock: watchdog extend failed')
          })
          .finally(() => {
            extending = undefined
          })
      },
      Math.max(1, Math.floor(ttlMs * lockDefaults.watchdogFraction)),
    )
    watchdog.unref()
    let failed = false
    try {
      const result = await fn(lock.signal, lock)
      if (lock.signal.aborted) throw lock.signal.reason as Error
      return result
    } catch (err) {
      failed = true
      throw err
    } finally {
      clearInterval(watchdog)
      await extending
      if (lock.held) {
        try {
          await lock.release()
        } catch (err) {
          // The lock expires by its TTL anyway; never mask fn's own error with a cleanup error.
          if (!failed && lockErrors.is(err, 'STRATA_LOCK_NOT_HELD'))
            // eslint-disable-next-line no-unsafe-finally
            throw lockErrors.create('STRATA_LOCK_LOST', { details: { key }, cause: err })
          this.logger.warn({ err, key }, 'lock: release after using() failed')
        }
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    // Release what we still hold so Postgres clients go back to the pool and Redis keys do not
    // linger for their TTL; failures only mean the TTL will free them.
    await Promise.allSettled([...this.#held].map((h) => h.release()))
    this.#held.clear()
    await this.closeBackend()
  }

  #assertOpen(): void {
    if (this.#closed) throw lockErrors.create('STRATA_LOCK_CLOSED')
  }
}

function aborted(key: string, signal: AbortSignal | undefined) {
  return lockErrors.create('STRATA_LOCK_ABORTED', { details: { key }, cause: signal?.reason })
}

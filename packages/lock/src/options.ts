import { parseDuration } from '@strata/core'
import type { Duration } from '@strata/core'
import { lockErrors } from './errors.js'

/** How `acquire` waits for a lock that someone else holds. */
export interface RetryOptions {
  /**
   * Longest total time to keep retrying; 0 tries exactly once.
   * @defaultValue '10s'
   */
  wait?: Duration
  /**
   * Upper bound on attempts, whichever of `wait` / `attempts` comes first.
   * @defaultValue Infinity
   */
  attempts?: number
  /**
   * First back-off delay; doubles per attempt up to `maxDelay`, with jitter.
   * @defaultValue '20ms'
   */
  minDelay?: Duration
  /**
   * Largest back-off delay.
   * @defaultValue '500ms'
   */
  maxDelay?: Duration
}

export interface ResolvedRetry {
  waitMs: number
  attempts: number
  minDelayMs: number
  maxDelayMs: number
}

export const lockDefaults = Object.freeze({
  retry: Object.freeze({
    waitMs: 10_000, // 10 s
    attempts: Number.POSITIVE_INFINITY,
    minDelayMs: 20,
    maxDelayMs: 500,
  }) satisfies ResolvedRetry,
  /** `using` extends the lock every ttl × this fraction. */
  watchdogFraction: 1 / 3,
  /** Key prefix for Redis keys and for the Postgres lock namespace. */
  prefix: 'strata:lock:',
  /** Postgres: idle_session_timeout = remaining TTL + this margin (frozen-holder backstop). */
  pgSessionMarginMs: 2_000, // 2 s
})

export function resolveRetry(base: ResolvedRetry, opts: RetryOptions | undefined): ResolvedRetry {
  if (!opts) return base
  try {
    const r: ResolvedRetry = {
      waitMs: opts.wait === undefined ? base.waitMs : parseDuration(opts.wait, 'retry.wait'),
      attempts: opts.attempts ?? base.attempts,
      minDelayMs:
        opts.minDelay === undefined
          ? base.minDelayMs
          : parseDuration(opts.minDelay, 'retry.minDelay'),
      maxDelayMs:
        opts.maxDelay === undefined
          ? base.maxDelayMs
          : parseDuration(opts.maxDelay, 'retry.maxDelay'),
    }
    if (!(r.attempts >= 1)) throw new RangeError(`retry.attempts must be >= 1, got ${r.attempts}`)
    if (r.maxDelayMs < r.minDelayMs)
      throw new RangeError('retry.maxDelay must be >= retry.minDelay')
    return r
  } catch (cause) {
    throw lockErrors.create('STRATA_LOCK_INVALID_OPTIONS', {
      message: (cause as Error).message,
      cause,
    })
  }
}

export function parseTtl(ttl: Duration): number {
  let ms: number
  try {
    ms = parseDuration(ttl, 'ttl')
  } catch (cause) {
    throw lockErrors.create('STRATA_LOCK_INVALID_TTL', { details: { ttl }, cause })
  }
  if (!(ms >= 1) || !Number.isSafeInteger(ms))
    throw lockErrors.create('STRATA_LOCK_INVALID_TTL', { details: { ttl } })
  return ms
}

export function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0)
    throw lockErrors.create('STRATA_LOCK_INVALID_KEY', { details: { key } })
  return key
}

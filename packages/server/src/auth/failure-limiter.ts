import { normalizeIP } from '@fastify/rate-limit'
import type { Logger } from '@strata/core'
import type { Cluster, Redis } from 'ioredis'

export interface AuthFailureLimiterOptions {
  /** Failed authentications per client address per window; then 429. 0: no limit. @defaultValue 50 */
  max: number
  /** The window, in ms, counted from an address's first failure. @defaultValue 60000 */
  windowMs: number
  /** Counters shared by every instance; absent: in this process's memory. */
  redis?: Redis | Cluster | null
  /** Prefix of the Redis keys. @defaultValue 'strata:auth-fail:' */
  nameSpace?: string
  /** Addresses tracked in memory (without Redis) before the oldest are dropped. @defaultValue 100000 */
  maxTrackedAddresses?: number
  logger?: Pick<Logger, 'warn'>
}

export const AUTH_FAILURE_DEFAULTS = Object.freeze({
  max: 50,
  windowMs: 60_000, // 1 min
  nameSpace: 'strata:auth-fail:',
  maxTrackedAddresses: 100_000,
})

/**
 * The counter of an address, without changing it.
 *
 * Input:  KEYS[1] counter key
 * Output: { failures, pttl }   { 0, 0 } when the address has no failures in the window
 */
const READ_1 = `
local n = redis.call("GET", KEYS[1])
if not n then return { 0, 0 } end
return { tonumber(n), redis.call("PTTL", KEYS[1]) }
`

/**
 * Counts one failure; the first failure of a window starts it.
 *
 * Input:  KEYS[1] counter key
 *         ARGV[1] window in ms
 * Output: { failures, pttl }
 */
const FAIL_1 = `
local n = redis.call("INCR", KEYS[1])
local ttl = redis.call("PTTL", KEYS[1])
if ttl < 0 then
  redis.call("PEXPIRE", KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { n, ttl }
`

interface Window {
  failures: number
  resetAt: number
}

/**
 * Counts failed authentications per client address (IPv6 per /64, as @fastify/rate-limit
 * does) and tells when an address has had `max` of them in the window, so its requests can be
 * refused before any key is looked up. With Redis the counters are shared by every instance;
 * if Redis fails, requests are let through (like the rate limits' skipOnError) rather than
 * refused.
 */
export class AuthFailureLimiter {
  readonly #o: Readonly<Required<Omit<AuthFailureLimiterOptions, 'redis' | 'logger'>>>
  readonly #redis: Redis | Cluster | null
  readonly #log: Pick<Logger, 'warn'> | undefined
  // Without Redis: every counter. With Redis: only addresses known to be over the limit, so a
  // blocked address costs no Redis round trip until its window ends.
  readonly #windows = new Map<string, Window>()
  #warnedAt = 0

  constructor(options: Partial<AuthFailureLimiterOptions> = {}) {
    const o = { ...AUTH_FAILURE_DEFAULTS, ...options }
    this.#o = Object.freeze({
      max: o.max,
      windowMs: o.windowMs,
      nameSpace: o.nameSpace,
      maxTrackedAddresses: o.maxTrackedAddresses,
    })
    this.#redis = options.redis ?? null
    this.#log = options.logger
  }

  get max(): number {
    return this.#o.max
  }

  /** Seconds until `address` may try again (0: it may now). */
  async retryAfter(address: string, now = Date.now()): Promise<number> {
    if (this.#o.max <= 0) return 0
    const key = normalizeIP(address)
    const local = this.#current(key, now)
    if (local && local.failures >= this.#o.max) return seconds(local.resetAt - now)
    if (!this.#redis) return 0
    const shared = await this.#eval(READ_1, key)
    return shared ? this.#remember(key, shared, now) : 0
  }

  /** Counts a failed authentication of `address`; returns retryAfter's answer after it. */
  async fail(address: string, now = Date.now()): Promise<number> {
    if (this.#o.max <= 0) return 0
    const key = normalizeIP(address)
    if (this.#redis) {
      const shared = await this.#eval(FAIL_1, key, String(this.#o.windowMs))
      return shared ? this.#remember(key, shared, now) : 0
    }
    const w = this.#current(key, now) ?? this.#track(key, now)
    w.failures++
    return w.failures >= this.#o.max ? seconds(w.resetAt - now) : 0
  }

  #current(key: string, now: number): Window | undefined {
    const w = this.#windows.get(key)
    if (w && w.resetAt <= now) {
      this.#windows.delete(key)
      return undefined
    }
    return w
  }

  #track(key: string, now: number): Window {
    if (this.#windows.size >= this.#o.maxTrackedAddresses) {
      for (const [k, w] of this.#windows) if (w.resetAt <= now) this.#windows.delete(k)
      // Still full: drop the oldest (Map order is insertion order).
      const excess = this.#windows.size - this.#o.maxTrackedAddresses + 1
      if (excess > 0) {
        let i = 0
        for (const k of this.#windows.keys()) {
          if (i++ >= excess) break
          this.#windows.delete(k)
        }
      }
    }
    const w = { failures: 0, resetAt: now + this.#o.windowMs }
    this.#windows.set(key, w)
    return w
  }

  #remember(key: string, [failures, pttl]: [number, number], now: number): number {
    if (failures < this.#o.max) return 0
    const wait = pttl > 0 ? pttl : this.#o.windowMs
    this.#windows.set(key, { failures, resetAt: now + wait })
    if (this.#windows.size > this.#o.maxTrackedAddresses) {
      const oldest = this.#windows.keys().next().value
      if (oldest !== undefined) this.#windows.delete(oldest)
    }
    return seconds(wait)
  }

  async #eval(script: string, key: string, ...args: string[]): Promise<[number, number] | null> {
    try {
      // Not connected: don't queue behind the reconnection (seconds), answer now.
      if (this.#redis!.status !== 'ready') throw new Error(`Redis is ${this.#redis!.status}`)
      const res = (await this.#redis!.eval(script, 1, this.#o.nameSpace + key, ...args)) as [
        number,
        number,
      ]
      return [Number(res[0]), Number(res[1])]
    } catch (err) {
      // Once per 10 s: while Redis is down every request would log it.
      if (Date.now() - this.#warnedAt > 10_000) {
        this.#warnedAt = Date.now()
        this.#log?.warn({ err }, 'auth failure counters unavailable; not limiting')
      }
      return null
    }
  }
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}

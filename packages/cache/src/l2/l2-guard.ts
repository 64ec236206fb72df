import type { CacheContext } from '../context.js'
import type { CircuitBreaker } from './circuit-breaker.js'
import type { L2Driver } from './driver.js'

/** What a guarded L2 call resolves to when it failed or was not sent (breaker open). */
export const FAILED: unique symbol = Symbol('l2-failed')
export type Failed = typeof FAILED

/**
 * Every L2 call goes through here: behind the circuit breaker, timed, counted, and never
 * rejecting, so no cache call throws because Redis is down.
 */
export class L2Guard {
  readonly driver: L2Driver
  readonly breaker: CircuitBreaker
  readonly #ctx: CacheContext
  #sample = 0

  constructor(driver: L2Driver, breaker: CircuitBreaker, ctx: CacheContext) {
    this.driver = driver
    this.breaker = breaker
    this.#ctx = ctx
  }

  /** False while the breaker is open: L2 is being skipped. */
  get healthy(): boolean {
    return this.breaker.state !== 'open'
  }

  /**
   * Runs `fn` on the driver unless the breaker is open; resolves FAILED on any error. Latency goes
   * to the stats histogram on every call but to prom-client on 1 call in 8 (its label hashing
   * costs more than the rest of this guard).
   */
  run<T>(op: string, fn: (driver: L2Driver) => Promise<T>): Promise<T | Failed> {
    const breaker = this.breaker
    if (!breaker.allow()) return Promise.resolve(FAILED)
    const t0 = performance.now()
    let p: Promise<T>
    try {
      p = fn(this.driver)
    } catch (error) {
      return Promise.resolve(this.#failed(op, error))
    }
    return p.then(
      (r) => {
        breaker.success()
        const ms = performance.now() - t0
        this.#ctx.counters.l2.latency.record(ms)
        if ((this.#sample++ & 7) === 0) this.#ctx.metrics?.observe('l2', op, ms / 1000)
        return r
      },
      (error: unknown) => this.#failed(op, error),
    )
  }

  #failed(op: string, err: unknown): Failed {
    this.breaker.failure()
    this.#ctx.counters.l2.errors++
    this.#ctx.opts.logger.debug({ op, err }, 'strata cache: L2 error')
    this.#ctx.events.emit('cache:error', { op, error: err })
    return FAILED
  }
}

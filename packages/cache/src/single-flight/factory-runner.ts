import type { Duration } from '@strata/core'
import { cacheErrors } from '../errors.js'
import type { CacheCounters } from '../stats/counters.js'

/** Passed to factories: the key, the stale value if any, and per-result overrides. */
export interface FactoryContext<T = unknown> {
  readonly key: string
  /** The last good value when one is still within grace. */
  readonly stale: T | undefined
  /** Overrides the TTL of the value being produced. */
  setTtl(ttl: Duration): void
  /** Replaces the tags of the value being produced. */
  setTags(tags: string[]): void
}

export type Factory<T> = (ctx: FactoryContext<T>) => T | Promise<T>

/**
 * Runs a factory with the hard timeout, counting calls, errors and timeouts; a failure becomes
 * STRATA_CACHE_FACTORY_ERROR (the original kept as cause).
 */
export class FactoryRunner {
  readonly #counters: CacheCounters

  constructor(counters: CacheCounters) {
    this.#counters = counters
  }

  run<T>(
    key: string,
    factory: Factory<T>,
    ctx: FactoryContext<T>,
    hard: number | undefined,
  ): T | Promise<T> {
    this.#counters.factoryCalls++
    if (hard === undefined) {
      // No timer to race: call it directly (no wrapper promise for a synchronous factory).
      let r: T | Promise<T>
      try {
        r = factory(ctx)
      } catch (err) {
        throw this.#failed(key, err)
      }
      if (typeof (r as { then?: unknown } | null)?.then === 'function')
        return Promise.resolve(r).catch((err: unknown) => {
          throw this.#failed(key, err)
        })
      return r
    }
    return new Promise<T>((resolve, reject) => {
      let done = false
      const timer = setTimeout(() => {
        done = true
        this.#counters.factoryTimeouts++
        reject(
          cacheErrors.create('STRATA_CACHE_FACTORY_TIMEOUT', {
            details: { key, timeoutMs: hard },
          }),
        )
      }, hard)
      const fail = (err: unknown): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        reject(this.#failed(key, err))
      }
      try {
        Promise.resolve(factory(ctx)).then((v) => {
          if (done) return
          done = true
          clearTimeout(timer)
          resolve(v)
        }, fail)
      } catch (err) {
        fail(err)
      }
    })
  }

  #failed(key: string, err: unknown): Error {
    this.#counters.factoryErrors++
    return cacheErrors.is(err)
      ? err
      : cacheErrors.create('STRATA_CACHE_FACTORY_ERROR', {
          message: `cache factory for "${key}" failed: ${err instanceof Error ? err.message : String(err)}`,
          details: { key },
          cause: err,
        })
  }
}

// Shared helpers for the cache tests: unique namespaces on the real Redis, cleanup by prefix.
import { IoRedisDriver, createCache } from '@strata/cache'
import type { BreakerOptions, Cache, CacheOptions } from '@strata/cache'
import type { Duration } from '@strata/core'
import { deletePrefix, redisUrl, uniquePrefix } from '../../../../test/support/redis.js'
import { ChaosDriver } from './chaos-driver.js'

/** Options of a cache on a ChaosDriver: the L2 settings that are not the driver's own. */
export type ChaosCacheOptions = Omit<Partial<CacheOptions>, 'l2'> & {
  l2?: { breaker?: BreakerOptions; lockTtl?: Duration }
}

export interface Harness {
  namespace: string
  make(extra?: Partial<CacheOptions>): Promise<Cache>
  /** A cache whose L2 is the real Redis behind a ChaosDriver. */
  makeChaos(extra?: ChaosCacheOptions): Promise<{ cache: Cache; chaos: ChaosDriver }>
  cleanup(): Promise<void>
}

/** Caches sharing one unique namespace (two instances in one process simulate two servers). */
export function harness(name: string): Harness {
  // uniquePrefix ends with ':'; the cache adds its own ':' after the namespace.
  const namespace = uniquePrefix(`cache-${name}`).slice(0, -1)
  const caches: Cache[] = []
  return {
    namespace,
    async make(extra = {}) {
      const c = createCache({
        namespace,
        l2: { redis: redisUrl() },
        metrics: false,
        ...extra,
      })
      caches.push(c)
      await c.ready()
      return c
    },
    async makeChaos(extra = {}) {
      const inner = new IoRedisDriver(redisUrl(), { keyPrefix: `${namespace}:` })
      const chaos = new ChaosDriver(inner)
      const cache = await this.make({ ...extra, l2: { ...extra.l2, driver: chaos } })
      return { cache, chaos }
    },
    async cleanup() {
      await Promise.all(caches.splice(0).map((c) => c.close()))
      await deletePrefix(`${namespace}:`)
    },
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls until `fn` is true (bus propagation is async); fails the test after `ms`. */
export async function until(fn: () => boolean | Promise<boolean>, ms = 2000): Promise<void> {
  const end = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await sleep(5)
  }
}

import type { CacheContext } from '../context.js'
import type { CircuitBreaker } from '../l2/circuit-breaker.js'
import type { L1Store } from '../tiers/l1-store.js'
import type { CacheCounters } from './counters.js'
import type { MetricSource } from './metrics.js'

export interface TierStats {
  hits: number
  misses: number
  hitRate: number
  size: number
  evictions: number
  latency: { p50: number; p99: number }
}

export interface CacheStats {
  l1: TierStats & { bytes: number }
  l2: (TierStats & { errors: number; breaker: string }) | undefined
  factory: { calls: number; errors: number; timeouts: number; staleServed: number }
  bus: { connected: boolean; received: number; published: number }
  hottestKeys: { key: string; count: number }[]
}

/** What Prometheus reads at scrape time: the cache's own counters, no work on the hot path. */
export function metricSource(
  c: CacheCounters,
  l1: L1Store,
  breaker: CircuitBreaker | undefined,
): MetricSource {
  return {
    requests: () => [
      { tier: 'l1', result: 'hit', value: c.l1.hits },
      { tier: 'l1', result: 'miss', value: c.l1.misses },
      { tier: 'l2', result: 'hit', value: c.l2.hits },
      { tier: 'l2', result: 'miss', value: c.l2.misses },
      { tier: 'l2', result: 'error', value: c.l2.errors },
    ],
    factory: () => [
      { result: 'ok', value: c.factoryCalls - c.factoryErrors - c.factoryTimeouts },
      { result: 'error', value: c.factoryErrors },
      { result: 'timeout', value: c.factoryTimeouts },
    ],
    entries: () => [{ tier: 'l1', value: l1.size }],
    breaker: () => breaker?.state,
  }
}

/** stats() from the counters, and the low hit-rate alert. */
export class StatsReporter {
  readonly #ctx: CacheContext
  readonly #l1: L1Store
  readonly #breaker: CircuitBreaker | undefined
  #alertTimer: NodeJS.Timeout | undefined

  constructor(ctx: CacheContext, l1: L1Store, breaker: CircuitBreaker | undefined) {
    this.#ctx = ctx
    this.#l1 = l1
    this.#breaker = breaker
    if (ctx.opts.hitRateAlert) this.#startHitRateAlert(ctx.opts.hitRateAlert)
  }

  stats(): CacheStats {
    const rate = (h: number, m: number): number => (h + m === 0 ? 0 : h / (h + m))
    const c = this.#ctx.counters
    const { l1, l2 } = c
    return {
      l1: {
        hits: l1.hits,
        misses: l1.misses,
        hitRate: rate(l1.hits, l1.misses),
        size: this.#l1.size,
        bytes: this.#l1.bytes,
        evictions: l1.evictions,
        latency: { p50: l1.latency.quantile(0.5), p99: l1.latency.quantile(0.99) },
      },
      l2: this.#breaker
        ? {
            hits: l2.hits,
            misses: l2.misses,
            hitRate: rate(l2.hits, l2.misses),
            size: -1,
            evictions: 0,
            errors: l2.errors,
            breaker: this.#breaker.state,
            latency: { p50: l2.latency.quantile(0.5), p99: l2.latency.quantile(0.99) },
          }
        : undefined,
      factory: {
        calls: c.factoryCalls,
        errors: c.factoryErrors,
        timeouts: c.factoryTimeouts,
        staleServed: c.staleServed,
      },
      bus: {
        connected: this.#ctx.busConnected,
        received: c.busReceived,
        published: c.busPublished,
      },
      hottestKeys: c.top.top(10),
    }
  }

  /** Emits `cache:hit-rate-low` for each window whose hit rate falls under the threshold. */
  #startHitRateAlert(a: { threshold: number; window: number; minRequests: number }): void {
    const { counters: c, events } = this.#ctx
    let lastHits = 0
    let lastReq = 0
    this.#alertTimer = setInterval(() => {
      const hits = c.l1.hits + c.l2.hits
      const req = c.l1.hits + c.l1.misses
      const dh = hits - lastHits
      const dr = req - lastReq
      lastHits = hits
      lastReq = req
      if (dr >= a.minRequests && dh / dr < a.threshold)
        events.emit('cache:hit-rate-low', {
          hitRate: dh / dr,
          threshold: a.threshold,
          requests: dr,
        })
    }, a.window)
    this.#alertTimer.unref()
  }

  close(): void {
    clearInterval(this.#alertTimer)
  }
}

import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { BreakerState } from '../l2/circuit-breaker.js'

/** Counters the cache keeps as plain numbers; Prometheus reads them at scrape time. */
export interface MetricSource {
  requests(): { tier: 'l1' | 'l2'; result: 'hit' | 'miss' | 'stale' | 'error'; value: number }[]
  factory(): { result: 'ok' | 'error' | 'timeout'; value: number }[]
  entries(): { tier: 'l1'; value: number }[]
  breaker(): BreakerState | undefined
}

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 }

/**
 * Prometheus metrics. Counters and gauges are filled in `collect()` from the cache's own
 * counters, so the hot path never touches prom-client's label maps; the duration histogram is
 * fed from sampled operations only.
 */
export class CacheMetrics {
  readonly registry: Registry
  readonly #duration: Histogram<'tier' | 'op'>

  constructor(source: MetricSource, registry?: Registry) {
    this.registry = registry ?? new Registry()
    const registers = [this.registry]
    new Counter({
      name: 'strata_cache_requests_total',
      help: 'Cache lookups by tier and result',
      labelNames: ['tier', 'result'],
      registers,
      collect() {
        this.reset()
        for (const r of source.requests()) this.inc({ tier: r.tier, result: r.result }, r.value)
      },
    })
    new Counter({
      name: 'strata_cache_factory_calls_total',
      help: 'Factory runs by result',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset()
        for (const r of source.factory()) this.inc({ result: r.result }, r.value)
      },
    })
    new Gauge({
      name: 'strata_cache_entries',
      help: 'Entries held per tier',
      labelNames: ['tier'],
      registers,
      collect() {
        for (const r of source.entries()) this.set({ tier: r.tier }, r.value)
      },
    })
    new Gauge({
      name: 'strata_cache_breaker_state',
      help: 'L2 circuit breaker: 0 closed, 1 half-open, 2 open',
      registers,
      collect() {
        const s = source.breaker()
        this.set(s === undefined ? 0 : BREAKER_VALUE[s])
      },
    })
    this.#duration = new Histogram({
      name: 'strata_cache_operation_duration_seconds',
      help: 'Sampled cache operation durations by tier and operation',
      labelNames: ['tier', 'op'],
      buckets: [1e-6, 5e-6, 2.5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1, 0.25, 1],
      registers,
    })
  }

  observe(tier: 'l1' | 'l2', op: string, seconds: number): void {
    this.#duration.observe({ tier, op }, seconds)
  }
}

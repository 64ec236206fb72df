import { randomUUID } from 'node:crypto'
import { CacheBus } from './bus/cache-bus.js'
import { VersionClock } from './clock.js'
import type { CacheContext } from './context.js'
import { cacheErrors } from './errors.js'
import { CacheEmitter } from './events.js'
import { Invalidator } from './invalidation/invalidator.js'
import { TagStates } from './invalidation/tag-states.js'
import { CircuitBreaker } from './l2/circuit-breaker.js'
import type { L2Driver } from './l2/driver.js'
import { L2Guard } from './l2/l2-guard.js'
import type { ResolvedOptions } from './options.js'
import { Serializer } from './serializer.js'
import { SingleFlight } from './single-flight/single-flight.js'
import { CacheCounters } from './stats/counters.js'
import { CacheMetrics } from './stats/metrics.js'
import { StatsReporter, metricSource } from './stats/stats-reporter.js'
import type { CacheStats } from './stats/stats-reporter.js'
import { L1Store } from './tiers/l1-store.js'
import { TwoTierStore } from './tiers/two-tier-store.js'

/**
 * The engine a cache and all its namespace views share, assembled from its parts: the two tiers
 * (reads and writes), single-flight, invalidation and tags, the bus, stats. Keys here are
 * relative to the root namespace (the driver adds `<namespace>:`), so the root view's L1 lookups
 * use the caller's key string as is: no concatenation, no re-hash.
 */
export class CacheCore {
  readonly rootPrefix: string
  readonly events: CacheEmitter
  readonly metrics: CacheMetrics | undefined
  readonly tiers: TwoTierStore
  readonly flights: SingleFlight
  readonly invalidation: Invalidator
  readonly #ctx: CacheContext
  readonly #bus: CacheBus
  readonly #stats: StatsReporter
  readonly #driver: L2Driver | undefined
  readonly #ready: Promise<void>
  #closed = false

  /** `driver`: the L2 (its keyPrefix is `<namespace>:`); without one the cache is L1-only. */
  constructor(opts: Readonly<ResolvedOptions>, driver: L2Driver | undefined) {
    this.rootPrefix = `${opts.namespace}:`
    this.#driver = driver
    const events = new CacheEmitter((err) =>
      opts.logger.warn({ err }, 'strata cache: event listener threw'),
    )
    this.events = events
    const counters = new CacheCounters()
    const l1 = new L1Store(opts, counters.l1)
    const breaker =
      driver &&
      new CircuitBreaker(opts.breakerThreshold, opts.breakerResetAfter, (state) => {
        opts.logger.warn({ state }, 'strata cache: L2 circuit breaker')
        events.emit('cache:breaker', { state })
      })
    this.metrics =
      opts.metrics === false
        ? undefined
        : new CacheMetrics(metricSource(counters, l1, breaker), opts.metrics.registry)
    const ctx: CacheContext = {
      opts,
      origin: randomUUID().slice(0, 12),
      events,
      clock: new VersionClock(),
      counters,
      metrics: this.metrics,
      // Without L2 the in-process bus is always "connected"; with L2 it is until proven up.
      busConnected: driver === undefined,
    }
    this.#ctx = ctx
    const guard = driver && breaker ? new L2Guard(driver, breaker, ctx) : undefined
    const serializer = new Serializer(
      opts.serializer,
      opts.compressThreshold,
      opts.compressAlgorithm,
    )
    const tags = new TagStates(ctx, guard)
    this.#bus = new CacheBus(ctx, this.rootPrefix, l1, tags, guard)
    this.tiers = new TwoTierStore(ctx, l1, tags, serializer, this.#bus, guard)
    this.invalidation = new Invalidator(ctx, l1, tags, this.#bus, guard)
    this.flights = new SingleFlight(ctx, l1, tags, this.tiers, this.#bus, guard)
    this.#stats = new StatsReporter(ctx, l1, breaker)
    // Ready once the bus listens and the command connection is up (or waited for long enough).
    const connecting = driver?.waitReady(Math.max(1000, opts.commandTimeout * 4))
    this.#ready = Promise.all([this.#bus.start(), connecting]).then(() => undefined)
  }

  /** Resolves once the bus subscription is live (or failed and will retry in background). */
  ready(): Promise<void> {
    return this.#ready
  }

  get busConnected(): boolean {
    return this.#ctx.busConnected
  }

  assertOpen(): void {
    if (this.#closed) throw cacheErrors.create('STRATA_CACHE_CLOSED')
  }

  stats(): CacheStats {
    return this.#stats.stats()
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#stats.close()
    this.flights.close()
    this.#bus.stop()
    // Let in-flight refreshes settle briefly so their writes are not cut mid-way.
    await this.flights.settle(100)
    await this.#driver?.close()
  }
}

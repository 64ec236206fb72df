import type { VersionClock } from './clock.js'
import type { CacheEmitter } from './events.js'
import type { ResolvedOptions } from './options.js'
import type { CacheCounters } from './stats/counters.js'
import type { CacheMetrics } from './stats/metrics.js'

/**
 * What every part of one cache shares (see cache-core.ts). Parts get the other parts they call
 * as explicit constructor arguments; this holds only what all of them touch.
 */
export interface CacheContext {
  readonly opts: Readonly<ResolvedOptions>
  /** This instance's id in bus messages and lock tokens. */
  readonly origin: string
  readonly events: CacheEmitter
  /** Versions of writes and invalidations (hybrid logical clock). */
  readonly clock: VersionClock
  readonly counters: CacheCounters
  readonly metrics: CacheMetrics | undefined
  /**
   * True while peers' invalidations reach this instance (always without L2). Written by the bus
   * only; while false, what L1 keeps is capped at busOutageTtl.
   */
  busConnected: boolean
}

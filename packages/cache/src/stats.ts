/** Log-bucketed latency histogram: O(1) record, bounded memory, quantiles within ~12%. */
export class LatencyHistogram {
  static readonly #FACTOR = 1.25
  static readonly #MIN_US = 0.05
  readonly #counts = new Float64Array(110)
  count = 0

  record(ms: number): void {
    const us = ms * 1000
    let i =
      us <= LatencyHistogram.#MIN_US
        ? 0
        : Math.ceil(Math.log(us / LatencyHistogram.#MIN_US) / Math.log(LatencyHistogram.#FACTOR))
    if (i >= this.#counts.length) i = this.#counts.length - 1
    this.#counts[i]!++
    this.count++
  }

  /** Upper bound of the bucket holding quantile q, in milliseconds (0 when empty). */
  quantile(q: number): number {
    if (this.count === 0) return 0
    const target = q * this.count
    let seen = 0
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i]!
      if (seen >= target) return (LatencyHistogram.#MIN_US * LatencyHistogram.#FACTOR ** i) / 1000
    }
    return 0
  }
}

/**
 * Space-saving top-k: `capacity` counters; an unseen key replaces the minimum and inherits its
 * count, so heavy hitters are never lost. Fed from a sample of reads to stay off the hot path.
 */
export class TopKeys {
  readonly #counts = new Map<string, number>()
  readonly #capacity: number

  constructor(capacity = 64) {
    this.#capacity = capacity
  }

  add(key: string): void {
    const c = this.#counts.get(key)
    if (c !== undefined) {
      this.#counts.set(key, c + 1)
      return
    }
    if (this.#counts.size < this.#capacity) {
      this.#counts.set(key, 1)
      return
    }
    let minKey = ''
    let min = Infinity
    for (const [k, v] of this.#counts) {
      if (v < min) {
        min = v
        minKey = k
      }
    }
    this.#counts.delete(minKey)
    this.#counts.set(key, min + 1)
  }

  top(n = 10): { key: string; count: number }[] {
    return [...this.#counts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([key, count]) => ({ key, count }))
  }
}

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

export class TierCounters {
  hits = 0
  misses = 0
  evictions = 0
  errors = 0
  readonly latency = new LatencyHistogram()
}

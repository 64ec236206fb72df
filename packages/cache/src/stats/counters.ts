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

export class TierCounters {
  hits = 0
  misses = 0
  evictions = 0
  errors = 0
  readonly latency = new LatencyHistogram()
}

/**
 * The plain numbers every part of a cache counts into; stats() and the Prometheus collectors
 * read them, so the hot paths never touch prom-client.
 */
export class CacheCounters {
  readonly l1 = new TierCounters()
  readonly l2 = new TierCounters()
  /** Hot keys, fed from a sample of L1 hits. */
  readonly top = new TopKeys(64)
  factoryCalls = 0
  factoryErrors = 0
  factoryTimeouts = 0
  staleServed = 0
  busReceived = 0
  busPublished = 0
}

// A fixed log-bucket histogram for cheap percentiles (acquire wait). Hand-written rather than
// hdr-histogram-js (WASM/large) because we need ~20 lines: bucket i covers
// [2^(i/SUB), 2^((i+1)/SUB)) microseconds; quantiles report the bucket's geometric midpoint, so
// the relative error is at most 2^(1/(2*SUB)) - 1 ≈ 4.4 % (SUB = 8), and values below 1 µs count
// as 0. Range: up to 2^(BUCKETS/SUB) µs ≈ 9.5 hours, clamped beyond.
const SUB = 8
const BUCKETS = 8 * 35

export class LogHistogram {
  readonly #counts = new Uint32Array(BUCKETS + 1) // [0] holds values < 1 µs
  #count = 0
  #max = 0

  /** Records a value in milliseconds. */
  record(ms: number): void {
    const us = ms * 1000
    const i = us < 1 ? 0 : Math.min(BUCKETS, 1 + Math.floor(Math.log2(us) * SUB))
    this.#counts[i]!++
    this.#count++
    if (ms > this.#max) this.#max = ms
  }

  get count(): number {
    return this.#count
  }

  get max(): number {
    return this.#max
  }

  /** Value (ms) at quantile q in [0, 1]; within ±4.4 % of an exact percentile; 0 when empty. */
  quantile(q: number): number {
    if (this.#count === 0) return 0
    const rank = Math.max(1, Math.ceil(q * this.#count))
    let seen = 0
    for (let i = 0; i <= BUCKETS; i++) {
      seen += this.#counts[i]!
      if (seen >= rank) {
        if (i === 0) return 0
        const mid = 2 ** ((i - 1 + 0.5) / SUB) / 1000
        return Math.min(mid, this.#max)
      }
    }
    return this.#max
  }

  /** Adds another histogram's counts into this one. */
  merge(other: LogHistogram): void {
    for (let i = 0; i <= BUCKETS; i++) this.#counts[i]! += other.#counts[i]!
    this.#count += other.#count
    if (other.#max > this.#max) this.#max = other.#max
  }

  reset(): void {
    this.#counts.fill(0)
    this.#count = 0
    this.#max = 0
  }
}

/**
 * Count-min sketch with 4-bit-style saturating counters and periodic halving (TinyLFU's
 * frequency estimate). Hand-written: the maintained JS W-TinyLFU caches replace the whole
 * cache, while we only need the admission check in front of lru-cache.
 */
export class FrequencySketch {
  readonly #rows: Uint8Array[]
  readonly #mask: number
  readonly #sampleSize: number
  #additions = 0

  constructor(capacity: number) {
    let width = 16
    while (width < capacity * 2) width *= 2
    this.#mask = width - 1
    this.#rows = [0, 1, 2, 3].map(() => new Uint8Array(width))
    this.#sampleSize = capacity * 10
  }

  static #hash(key: string): number {
    let h = 0x811c9dc5
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
    return h >>> 0
  }

  #index(h: number, row: number): number {
    const x = Math.imul(h ^ (row * 0x9e3779b9), 0x85ebca6b)
    return ((x ^ (x >>> 15)) >>> 0) & this.#mask
  }

  increment(key: string): void {
    const h = FrequencySketch.#hash(key)
    for (let r = 0; r < 4; r++) {
      const row = this.#rows[r]!
      const i = this.#index(h, r)
      if (row[i]! < 15) row[i]!++
    }
    if (++this.#additions >= this.#sampleSize) {
      // Aging: halve every counter so old popularity fades.
      for (const row of this.#rows) for (let i = 0; i < row.length; i++) row[i] = row[i]! >>> 1
      this.#additions = this.#additions >>> 1
    }
  }

  frequency(key: string): number {
    const h = FrequencySketch.#hash(key)
    let min = 15
    for (let r = 0; r < 4; r++) {
      const v = this.#rows[r]![this.#index(h, r)]!
      if (v < min) min = v
    }
    return min
  }
}

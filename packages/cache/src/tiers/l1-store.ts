import { LRUCache } from 'lru-cache'
import type { ResolvedOptions } from '../options.js'
import type { TierCounters } from '../stats/counters.js'
import { FrequencySketch } from '../tinylfu.js'

/** What L1 holds: the LIVE value plus what is needed to judge it without touching Redis. */
export interface L1Entry {
  value: unknown
  version: number
  expiresAt: number
  staleUntil: number
  /** Full tag keys. */
  tags: string[] | undefined
  size: number
}

/**
 * The in-process tier: an LRU bounded by entries and bytes, with optional TinyLFU admission, and
 * the version-checked evictions that writes and invalidations (local or from the bus) apply.
 */
export class L1Store {
  readonly #lru: LRUCache<string, L1Entry>
  readonly #sketch: FrequencySketch | undefined
  readonly #maxEntries: number

  constructor(
    opts: Pick<ResolvedOptions, 'maxEntries' | 'maxBytes' | 'admission'>,
    counters: TierCounters,
  ) {
    this.#maxEntries = opts.maxEntries
    this.#lru = new LRUCache<string, L1Entry>({
      max: opts.maxEntries,
      maxSize: opts.maxBytes,
      sizeCalculation: (e) => e.size,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') counters.evictions++
      },
    })
    this.#sketch = opts.admission === 'tinylfu' ? new FrequencySketch(opts.maxEntries) : undefined
  }

  get size(): number {
    return this.#lru.size
  }

  get bytes(): number {
    return this.#lru.calculatedSize
  }

  /** The entry, marked as recently used. */
  get(full: string): L1Entry | undefined {
    return this.#lru.get(full)
  }

  has(full: string): boolean {
    return this.#lru.has(full)
  }

  delete(full: string): void {
    this.#lru.delete(full)
  }

  /** Counts an access to `full` for admission (nothing to do without TinyLFU). */
  touch(full: string): void {
    if (this.#sketch !== undefined) this.#sketch.increment(full)
  }

  set(full: string, entry: L1Entry): void {
    if (this.#sketch !== undefined) {
      // W-TinyLFU admission: a new key only replaces the LRU victim when it is more frequent.
      if (this.#lru.size >= this.#maxEntries && !this.#lru.has(full)) {
        const victim = this.#lru.rkeys().next().value
        if (victim !== undefined && this.#sketch.frequency(full) <= this.#sketch.frequency(victim))
          return
      }
    }
    this.#lru.set(full, entry)
  }

  /** Evicts the keys whose entry is older than `version` (a late message spares newer ones). */
  evictOlder(keys: string[], version: number): void {
    for (const k of keys) {
      const e = this.#lru.peek(k)
      if (e !== undefined && e.version < version) this.#lru.delete(k)
    }
  }

  /** Evicts entries under `prefix` older than `version`. */
  evictPrefix(prefix: string, version: number): void {
    for (const [k, e] of this.#lru.entries())
      if (k.startsWith(prefix) && e.version < version) this.#lru.delete(k)
  }

  /** Evicts entries under `prefix` whose rest matches `re` and older than `version`; returns how many. */
  evictMatching(prefix: string, re: RegExp, version: number): number {
    let n = 0
    for (const [k, e] of this.#lru.entries()) {
      if (k.startsWith(prefix) && e.version < version && re.test(k.slice(prefix.length))) {
        this.#lru.delete(k)
        n++
      }
    }
    return n
  }

  clear(): void {
    this.#lru.clear()
  }

  /** No entry stays fresh past `cap` (the bus went down: peers' changes no longer reach us). */
  capExpiry(cap: number): void {
    for (const e of this.#lru.values()) if (e.expiresAt > cap) e.expiresAt = cap
  }
}

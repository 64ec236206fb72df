/**
 * Hybrid logical clock for entry versions: wall-clock microseconds, bumped past anything seen
 * on the bus or in L2, so "newer" is consistent across instances with slightly skewed clocks
 * and a late invalidation can never evict a value written after it.
 */
export class VersionClock {
  #last = 0

  next(): number {
    const now = Date.now() * 1000
    this.#last = now > this.#last ? now : this.#last + 1
    return this.#last
  }

  observe(version: number): void {
    if (version > this.#last) this.#last = version
  }
}

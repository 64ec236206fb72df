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

let cachedNow = 0
let armed = false
// One reusable timer; refresh() re-arms it, so an idle process schedules nothing.
const disarm = setTimeout(() => {
  armed = false
}, 1)
disarm.unref()

/**
 * Wall clock with ~1 ms granularity for the L1 hit path, where Date.now() costs more than the
 * LRU lookup itself. The value is re-read at most once per millisecond; while the event
 * loop is blocked it stays frozen, so expiry can be late by at most the loop's stall.
 */
export function coarseNow(): number {
  if (armed) return cachedNow
  cachedNow = Date.now()
  armed = true
  disarm.refresh()
  return cachedNow
}

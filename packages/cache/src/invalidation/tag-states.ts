import { LRUCache } from 'lru-cache'
import { coarseNow } from '../clock.js'
import type { CacheContext } from '../context.js'
import { FAILED } from '../l2/l2-guard.js'
import type { L2Guard } from '../l2/l2-guard.js'

/** An entry's standing against its tags' invalidations. */
export const TAG_OK = 0
export const TAG_INVALID = 1
/** Some tag's state is missing or expired: fetch it (ensure) before judging. */
export const TAG_UNKNOWN = 2
export type TagVerdict = typeof TAG_OK | typeof TAG_INVALID | typeof TAG_UNKNOWN

interface TagState {
  /** Highest invalidation version seen for the tag. */
  v: number
  /** Entries at or above this version are judged by `v` alone; older ones need a fetch. */
  floor: number
  /** After this wall-clock time the state must be re-fetched (bus outage). */
  until: number
}

/**
 * Lazy tag invalidation: a tag's invalidation version is known here (from the bus, or fetched
 * from L2 when unknown) and an entry is valid while it is newer than each of its tags' versions.
 * Bounded: an evicted state is simply re-fetched.
 */
export class TagStates {
  readonly #ctx: CacheContext
  readonly #guard: L2Guard | undefined
  readonly #tags: LRUCache<string, TagState>

  constructor(ctx: CacheContext, guard: L2Guard | undefined) {
    this.#ctx = ctx
    this.#guard = guard
    this.#tags = new LRUCache<string, TagState>({ max: Math.max(1000, ctx.opts.maxEntries) })
  }

  /** Judges an entry that has tags, from what is known here (no I/O). */
  verdict(e: { version: number; tags: string[] | undefined }): TagVerdict {
    const now = coarseNow()
    let state: TagVerdict = TAG_OK
    for (const t of e.tags!) {
      const s = this.#tags.get(t)
      if (s === undefined) {
        // Without Redis every invalidation is local, so an unseen tag was never invalidated.
        if (this.#guard === undefined) continue
        state = TAG_UNKNOWN
        continue
      }
      if (e.version <= s.v) return TAG_INVALID
      if (s.until < now || e.version < s.floor) state = TAG_UNKNOWN
    }
    return state
  }

  #until(): number {
    return this.#ctx.busConnected ? Infinity : Date.now() + this.#ctx.opts.busOutageTtl
  }

  /** A fresh write is newer than every invalidation we could know of, so it is known-valid. */
  noteWrite(tag: string, version: number): void {
    if (!this.#tags.has(tag)) this.#tags.set(tag, { v: 0, floor: version, until: this.#until() })
  }

  /** Records an invalidation of `tags` at `version` (ours or a peer's). */
  invalidate(tags: string[], version: number): void {
    const until = this.#until()
    for (const t of tags) {
      const s = this.#tags.get(t)
      this.#tags.set(t, { v: Math.max(s?.v ?? 0, version), floor: 0, until })
    }
  }

  /** Fetches the versions of tags whose state is missing, expired or only a write floor. */
  async ensure(tags: string[]): Promise<void> {
    const guard = this.#guard
    if (guard === undefined) return
    const now = Date.now()
    const missing = tags.filter((t) => {
      const s = this.#tags.get(t)
      return s === undefined || s.until < now || s.floor > 0
    })
    if (missing.length === 0) return
    const versions = await guard.run('tags', (d) => d.getVersions(missing))
    const until = this.#until()
    for (let i = 0; i < missing.length; i++) {
      const t = missing[i]!
      const prev = this.#tags.get(t)
      if (versions === FAILED) {
        // Redis unreachable: trust what we have for a short while rather than miss forever.
        this.#tags.set(t, { v: prev?.v ?? 0, floor: 0, until: now + this.#ctx.opts.busOutageTtl })
      } else {
        const v = versions[i]!
        this.#ctx.clock.observe(v)
        this.#tags.set(t, { v: Math.max(prev?.v ?? 0, v), floor: 0, until })
      }
    }
  }

  /** Forgets the states of tags under `prefix` (a clear). */
  forgetPrefix(prefix: string): void {
    for (const k of [...this.#tags.keys()]) if (k.startsWith(prefix)) this.#tags.delete(k)
  }

  clear(): void {
    this.#tags.clear()
  }

  /** No state is trusted past `cap` (the bus went down). */
  capUntil(cap: number): void {
    for (const s of this.#tags.values()) if (s.until > cap) s.until = cap
  }
}

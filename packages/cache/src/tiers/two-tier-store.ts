import type { CacheContext } from '../context.js'
import type { CacheBus } from '../bus/cache-bus.js'
import type { BusMessage } from '../bus/bus-message.js'
import { coarseNow } from '../clock.js'
import { TAG_OK, TAG_UNKNOWN } from '../invalidation/tag-states.js'
import type { TagStates } from '../invalidation/tag-states.js'
import { FAILED } from '../l2/l2-guard.js'
import type { L2Guard } from '../l2/l2-guard.js'
import type { CacheEmitter } from '../events.js'
import type { DecodedEntry, Serializer } from '../serializer.js'
import type { TierCounters } from '../stats/counters.js'
import type { L1Entry, L1Store } from './l1-store.js'

/** Per-call entry settings, resolved to milliseconds. */
export interface EntrySettings {
  ttl: number
  grace: number
  jitter: number
  soft: number | undefined
  hard: number | undefined
  tags: string[] | undefined
}

/**
 * Reads and writes across the two tiers: L1 first, then L2 (through the guard), entries decoded
 * and judged by expiry, grace and tags; a write fills L1 at once and sends the L2 write and its
 * bus message together. While peers' invalidations can't reach us (bus down, or L2 skipped by the
 * breaker) what L1 keeps is capped at busOutageTtl.
 */
export class TwoTierStore {
  readonly #ctx: CacheContext
  readonly #l1: L1Store
  readonly #tags: TagStates
  readonly #serializer: Serializer
  readonly #bus: CacheBus
  readonly #guard: L2Guard | undefined
  readonly #clone: boolean
  /** The hit path's fields, read directly rather than through the context. */
  readonly #l1c: TierCounters
  readonly #events: CacheEmitter
  #sample = 0

  constructor(
    ctx: CacheContext,
    l1: L1Store,
    tags: TagStates,
    serializer: Serializer,
    bus: CacheBus,
    guard: L2Guard | undefined,
  ) {
    this.#ctx = ctx
    this.#l1 = l1
    this.#tags = tags
    this.#serializer = serializer
    this.#bus = bus
    this.#guard = guard
    this.#clone = ctx.opts.clone
    this.#l1c = ctx.counters.l1
    this.#events = ctx.events
  }

  // ---------------------------------------------------------------- L1 fast paths

  /** A fresh, tag-valid L1 entry or undefined. Synchronous and allocation-free. */
  freshL1(full: string): L1Entry | undefined {
    const e = this.#l1.get(full)
    if (e === undefined) return undefined
    if (e.expiresAt <= coarseNow()) return undefined
    if (e.tags !== undefined && this.#tags.verdict(e) !== TAG_OK) return undefined
    return e
  }

  /** What callers get: the live value, or a copy with `clone: true`. */
  out<T>(value: unknown): T {
    return (this.#clone ? structuredClone(value) : value) as T
  }

  /** Counts an L1 hit; samples latency and hot keys on 1 in 64 / 1 in 16 calls. */
  countL1Hit(full: string): void {
    this.#l1c.hits++
    this.#l1.touch(full)
    const s = ++this.#sample
    if ((s & 15) === 0) this.#ctx.counters.top.add(full)
    if ((s & 63) === 0) {
      const t0 = performance.now()
      this.#l1.get(full)
      const ms = performance.now() - t0
      this.#l1c.latency.record(ms)
      this.#ctx.metrics?.observe('l1', 'get', ms / 1000)
    }
    if (this.#events.has('cache:hit'))
      this.#events.emit('cache:hit', { key: full, tier: 'l1', stale: false })
  }

  // ---------------------------------------------------------------- reads

  /** Fresh value, else a value within grace, else undefined. */
  async get(full: string): Promise<{ value: unknown } | undefined> {
    const e = this.freshL1(full)
    if (e !== undefined) {
      this.countL1Hit(full)
      return { value: e.value }
    }
    this.#ctx.counters.l1.misses++
    // Only an entry still in L1 (stale or tag-unknown) needs the async check.
    const l1 = this.#l1.has(full) ? await this.#usableL1(full) : undefined
    const d = await this.#readL2(full)
    if (d !== undefined && (l1 === undefined || d.version >= l1.version)) {
      this.#l1.set(full, this.#entryFromDecoded(d))
      return { value: d.value }
    }
    if (l1 !== undefined) {
      this.#ctx.counters.staleServed++
      return { value: l1.value }
    }
    if (this.#ctx.events.has('cache:miss')) this.#ctx.events.emit('cache:miss', { key: full })
    return undefined
  }

  /** An L1 entry within grace with valid tags (fetching tag versions if needed). */
  async #usableL1(full: string): Promise<L1Entry | undefined> {
    const e = this.#l1.get(full)
    if (e === undefined) return undefined
    if (e.staleUntil <= Date.now()) return undefined
    if (e.tags !== undefined) {
      if (this.#tags.verdict(e) === TAG_UNKNOWN) await this.#tags.ensure(e.tags)
      if (this.#tags.verdict(e) !== TAG_OK) return undefined
    }
    return e
  }

  /** An L2 entry within grace with valid tags, or undefined (miss, error, breaker open). */
  async #readL2(full: string): Promise<DecodedEntry | undefined> {
    const guard = this.#guard
    if (guard === undefined) return undefined
    const l2 = this.#ctx.counters.l2
    const buf = await guard.run('get', (d) => d.get(full))
    if (buf === FAILED || buf === null) {
      l2.misses++
      return undefined
    }
    const d = this.#decode(buf)
    if (d === undefined || d.staleUntil <= Date.now()) {
      l2.misses++
      return undefined
    }
    if (d.tags) {
      await this.#tags.ensure(d.tags)
      if (this.#tags.verdict(d) !== TAG_OK) {
        l2.misses++
        return undefined
      }
    }
    const stale = d.expiresAt <= Date.now()
    if (stale) l2.misses++
    else l2.hits++
    this.#emitL2Hit(full, stale)
    return d
  }

  async getMany(fulls: string[]): Promise<({ value: unknown } | undefined)[]> {
    const counters = this.#ctx.counters
    const out: ({ value: unknown } | undefined)[] = new Array(fulls.length)
    const missIdx: number[] = []
    for (let i = 0; i < fulls.length; i++) {
      const e = this.freshL1(fulls[i]!)
      if (e !== undefined) {
        this.countL1Hit(fulls[i]!)
        out[i] = { value: e.value }
      } else {
        counters.l1.misses++
        missIdx.push(i)
      }
    }
    const guard = this.#guard
    if (missIdx.length === 0) return out
    const bufs = guard
      ? await guard.run('mget', (d) => d.mget(missIdx.map((i) => fulls[i]!)))
      : FAILED
    let now = Date.now()
    for (let j = 0; j < missIdx.length; j++) {
      const i = missIdx[j]!
      const full = fulls[i]!
      const buf = bufs === FAILED ? null : bufs[j]
      const d = buf ? this.#decode(buf) : undefined
      let ok = d !== undefined && d.staleUntil > now
      if (ok && d!.tags) {
        await this.#tags.ensure(d!.tags)
        ok = this.#tags.verdict(d!) === TAG_OK
        now = Date.now()
      }
      if (ok) {
        if (d!.expiresAt > now) counters.l2.hits++
        else counters.l2.misses++
        this.#l1.set(full, this.#entryFromDecoded(d!, now))
        out[i] = { value: d!.value }
      } else {
        if (guard) counters.l2.misses++
        const l1 = this.#l1.has(full) ? await this.#usableL1(full) : undefined
        out[i] = l1 ? { value: l1.value } : undefined
        now = Date.now()
      }
    }
    return out
  }

  /**
   * Judges an L2 value met during a refresh: a fresh, tag-valid one fills L1 and is returned as
   * `fresh`; a valid stale one newer than what we had becomes the new `stale` (and fills L1, so
   * concurrent callers can be answered from it).
   */
  async consider(
    full: string,
    buf: Buffer,
    stale: L1Entry | undefined,
  ): Promise<{ fresh?: L1Entry; stale: L1Entry | undefined }> {
    const d = this.#decode(buf)
    if (d === undefined) return { stale }
    const now = Date.now()
    let valid = d.staleUntil > now
    if (valid && d.tags) {
      await this.#tags.ensure(d.tags)
      valid = this.#tags.verdict(d) === TAG_OK
    }
    if (!valid) return { stale }
    const entry = this.#entryFromDecoded(d)
    if (d.expiresAt > now) {
      this.#ctx.counters.l2.hits++
      this.#emitL2Hit(full, false)
      this.#l1.set(full, entry)
      return { fresh: entry, stale }
    }
    if (stale === undefined || d.version > stale.version) {
      this.#l1.set(full, entry)
      return { stale: entry }
    }
    return { stale }
  }

  /** A decoded entry has exactly L1Entry's fields (same order, same shape): kept as is. */
  #entryFromDecoded(d: DecodedEntry, now = Date.now()): L1Entry {
    this.#ctx.clock.observe(d.version)
    return this.#capForOutage(d, now)
  }

  #decode(buf: Buffer): DecodedEntry | undefined {
    try {
      return this.#serializer.decode(buf)
    } catch (err) {
      this.#ctx.events.emit('cache:error', { op: 'decode', error: err })
      return undefined
    }
  }

  #emitL2Hit(full: string, stale: boolean): void {
    if (this.#ctx.events.has('cache:hit'))
      this.#ctx.events.emit('cache:hit', { key: full, tier: 'l2', stale })
  }

  // ---------------------------------------------------------------- writes

  /**
   * Fills L1 synchronously (serialization errors throw here, synchronously) and returns the L2
   * write, which never rejects. With `lockToken`, the L2 write also gives back that lock.
   */
  write(full: string, value: unknown, s: EntrySettings, lockToken?: string): Promise<void> {
    const now = Date.now()
    const version = this.#ctx.clock.next()
    const guard = this.#guard
    const { entry, buf } = this.#newEntry(value, s, version, now)
    const { staleUntil } = entry
    this.#l1.set(full, this.#capForOutage(entry, now))
    if (this.#ctx.events.has('cache:set')) this.#ctx.events.emit('cache:set', { key: full })
    if (!guard) {
      this.#bus.publishLocal({ o: this.#ctx.origin, t: 'set', v: version, k: [full] })
      return Promise.resolve()
    }
    const bus = this.#bus
    const msg = bus.setMessage(version, full)
    return guard
      .run('set', (d) => d.setAndPublish(full, buf!, staleUntil - now, bus.channel, msg, lockToken))
      .then((r) => {
        if (r !== FAILED) bus.published()
        else this.#capUnseen(entry, now)
      })
  }

  async writeMany(items: { full: string; value: unknown; s: EntrySettings }[]): Promise<void> {
    const now = Date.now()
    const version = this.#ctx.clock.next()
    const guard = this.#guard
    const l2items: { key: string; value: Buffer; px: number }[] = []
    const entries: L1Entry[] = []
    for (const { full, value, s } of items) {
      const { entry, buf } = this.#newEntry(value, s, version, now)
      entries.push(entry)
      this.#l1.set(full, this.#capForOutage(entry, now))
      if (buf) l2items.push({ key: full, value: buf, px: entry.staleUntil - now })
    }
    const bus = this.#bus
    const msg: BusMessage = {
      o: this.#ctx.origin,
      t: 'set',
      v: version,
      k: items.map((i) => i.full),
    }
    if (!guard) return bus.publishLocal(msg)
    const r = await guard.run('setMany', (d) =>
      d.setManyAndPublish(l2items, bus.channel, bus.encode(msg)),
    )
    if (r === FAILED) for (const e of entries) this.#capUnseen(e, now)
  }

  #lifetime(s: EntrySettings, now: number): { expiresAt: number; staleUntil: number } {
    let ttl = s.ttl
    if (s.jitter > 0) ttl = Math.max(1, ttl * (1 + (Math.random() * 2 - 1) * s.jitter))
    const expiresAt = now + ttl
    return { expiresAt, staleUntil: expiresAt + s.grace }
  }

  /**
   * A write Redis never saw (nor its bus message): peers and L2 keep the old value, so this
   * instance's newer one must not outlive busOutageTtl either, whether or not the breaker opened.
   */
  #capUnseen(e: L1Entry, now: number): void {
    const cap = now + this.#ctx.opts.busOutageTtl
    if (e.expiresAt > cap) e.expiresAt = cap
  }

  /** L1 can't be kept coherent while the bus is down or L2 is skipped: cap what we keep then. */
  #capForOutage(e: L1Entry, now: number): L1Entry {
    if (this.#ctx.busConnected && (this.#guard === undefined || this.#guard.healthy)) return e
    const cap = now + this.#ctx.opts.busOutageTtl
    if (e.expiresAt > cap) e.expiresAt = cap
    return e
  }

  /**
   * The L1 entry for a write (tags noted at `version`) and, with an L2, its serialized form;
   * serialization errors throw here, synchronously.
   */
  #newEntry(
    value: unknown,
    s: EntrySettings,
    version: number,
    now: number,
  ): { entry: L1Entry; buf: Buffer | undefined } {
    const { expiresAt, staleUntil } = this.#lifetime(s, now)
    const tags = s.tags?.length ? s.tags : undefined
    for (const t of tags ?? []) this.#tags.noteWrite(t, version)
    const buf = this.#guard
      ? this.#serializer.encode(value, { version, expiresAt, staleUntil, tags })
      : undefined
    const entry: L1Entry = {
      value: this.#clone ? structuredClone(value) : value,
      version,
      expiresAt,
      staleUntil,
      tags,
      size: buf ? buf.length : this.#estimate(value),
    }
    return { entry, buf }
  }

  #estimate(value: unknown): number {
    switch (typeof value) {
      case 'string':
        return value.length + 16
      case 'number':
      case 'boolean':
      case 'undefined':
      case 'bigint':
        return 16
      default:
        if (value === null) return 16
        if (Buffer.isBuffer(value)) return value.length + 16
        try {
          return this.#serializer.payload(value).length + 16
        } catch {
          return 1024
        }
    }
  }
}

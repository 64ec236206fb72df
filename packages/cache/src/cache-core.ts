import { randomUUID } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { CircuitBreaker } from './breaker.js'
import { VersionClock, coarseNow } from './clock.js'
import { cacheErrors } from './errors.js'
import { CacheEmitter } from './events.js'
import { CacheMetrics } from './metrics.js'
import type { Duration } from '@strata/core'
import { duration } from './options.js'
import type { ResolvedOptions } from './options.js'
import { IoRedisDriver, escapeGlob } from './redis-driver.js'
import type { L2Driver } from './redis-driver.js'
import { Serializer } from './serializer.js'
import type { DecodedEntry } from './serializer.js'
import { TierCounters, TopKeys } from './stats.js'
import type { CacheStats } from './stats.js'
import { FrequencySketch } from './tinylfu.js'

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

/** Per-call entry settings, resolved to milliseconds. */
export interface EntrySettings {
  ttl: number
  grace: number
  jitter: number
  soft: number | undefined
  hard: number | undefined
  tags: string[] | undefined
}

/** Passed to factories: the key, the stale value if any, and per-result overrides. */
export interface FactoryContext<T = unknown> {
  readonly key: string
  /** The last good value when one is still within grace. */
  readonly stale: T | undefined
  /** Overrides the TTL of the value being produced. */
  setTtl(ttl: Duration): void
  /** Replaces the tags of the value being produced. */
  setTags(tags: string[]): void
}

export type Factory<T> = (ctx: FactoryContext<T>) => T | Promise<T>

/** A bus message: origin, kind, full keys / tag keys / prefix, and the HLC version of the change. */
interface BusMessage {
  o: string
  /** 'unlock': a producer gave up its lock without a value (its factory failed); wakes waiters. */
  t: 'set' | 'del' | 'tag' | 'clear' | 'pattern' | 'unlock'
  v: number
  k?: string[]
  g?: string[]
  p?: string
  m?: string
}

interface TagState {
  /** Highest invalidation version seen for the tag. */
  v: number
  /** Entries at or above this version are judged by `v` alone; older ones need a fetch. */
  floor: number
  /** After this wall-clock time the state must be re-fetched (bus outage). */
  until: number
}

interface Flight {
  fresh: Promise<unknown>
  stale: Promise<L1Entry | undefined>
}

const OK = 0
const INVALID = 1
const UNKNOWN = 2
const FAILED: unique symbol = Symbol('l2-failed')
const noop = (): void => {}
const TAG_TTL = 30 * 24 * 3_600_000 // tag versions outlive any sane entry lifetime
const INTERNAL = '__strata:'

/** In-process bus for caches without Redis: same-namespace instances invalidate each other. */
const localBus = new Map<string, Set<CacheCore>>()

export function globToRegExp(glob: string): RegExp {
  let re = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === '\\' && i + 1 < glob.length) re += `\\${glob[++i]!}`.replace(/\\([a-zA-Z0-9])/, '$1')
    else if (c === '*') re += '.*'
    else if (c === '?') re += '.'
    else if (c === '[' || c === ']') re += c
    else re += c.replace(/[.+^${}()|\\/-]/g, '\\$&')
  }
  return new RegExp(`^${re}$`, 's')
}

/**
 * The engine shared by a cache and all its namespace views: tiers, bus, breaker, single-flight,
 * stats. Keys here are relative to the root namespace (the driver adds `<namespace>:`), so
 * the root view's L1 lookups use the caller's key string as is: no concatenation, no re-hash.
 */
export class CacheCore {
  readonly opts: Readonly<ResolvedOptions>
  readonly origin = randomUUID().slice(0, 12)
  readonly rootPrefix: string
  readonly channel: string
  readonly events: CacheEmitter
  readonly metrics: CacheMetrics | undefined
  readonly #l1: LRUCache<string, L1Entry>
  readonly #sketch: FrequencySketch | undefined
  readonly #serializer: Serializer
  readonly #driver: L2Driver | undefined
  readonly #breaker: CircuitBreaker | undefined
  readonly #clock = new VersionClock()
  /** Tag invalidation states, bounded (an evicted state is simply re-fetched from Redis). */
  readonly #tags: LRUCache<string, TagState>
  readonly #flights = new Map<string, Flight>()
  readonly #pendingWrites = new Set<Promise<void>>()
  /** Locks held while their factory runs: key → token. */
  readonly #held = new Map<string, string>()
  #keepAlive: NodeJS.Timeout | undefined
  /** The flight waiting for a peer's write of a key (one flight per key, so one waiter). */
  readonly #waiters = new Map<string, () => void>()
  /** Per key with a flight: how many peer writes of it the bus has delivered (see #fly). */
  readonly #wakes = new Map<string, number>()
  /** Every message this instance publishes starts with this (JSON key order is fixed). */
  readonly #selfTag: string
  #l2Sample = 0
  /** First L2 reads of refreshes, and how many found a fresh value (see #noteProbe). */
  #probes = 0
  #probeHits = 0
  readonly #top = new TopKeys(64)
  readonly #l1c = new TierCounters()
  readonly #l2c = new TierCounters()
  #factoryCalls = 0
  #factoryErrors = 0
  #factoryTimeouts = 0
  #staleServed = 0
  #busConnected: boolean
  #busReceived = 0
  #busPublished = 0
  #tokenSeq = 0
  #sample = 0
  #closed = false
  #alertTimer: NodeJS.Timeout | undefined
  #ready: Promise<void>

  constructor(opts: Readonly<ResolvedOptions>) {
    this.opts = opts
    this.rootPrefix = `${opts.namespace}:`
    this.channel = `${this.rootPrefix}${INTERNAL}bus`
    this.#selfTag = `{"o":"${this.origin}"`
    this.events = new CacheEmitter((err) =>
      opts.logger.warn({ err: String(err) }, 'strata cache: event listener threw'),
    )
    this.#serializer = new Serializer(
      opts.serializer,
      opts.compressThreshold,
      opts.compressAlgorithm,
    )
    this.#l1 = new LRUCache<string, L1Entry>({
      max: opts.maxEntries,
      maxSize: opts.maxBytes,
      sizeCalculation: (e) => e.size,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.#l1c.evictions++
      },
    })
    this.#tags = new LRUCache<string, TagState>({ max: Math.max(1000, opts.maxEntries) })
    this.#sketch = opts.admission === 'tinylfu' ? new FrequencySketch(opts.maxEntries) : undefined
    if (opts.l2) {
      this.#driver = new IoRedisDriver(opts.l2.redis, {
        keyPrefix: this.rootPrefix,
        commandTimeout: opts.commandTimeout,
        maxOfflineQueue: opts.maxOfflineQueue,
        autoPipelining: opts.autoPipelining,
        logger: opts.logger,
      })
      this.#breaker = new CircuitBreaker(opts.breakerThreshold, opts.breakerResetAfter, (state) => {
        opts.logger.warn({ state }, 'strata cache: L2 circuit breaker')
        this.events.emit('cache:breaker', { state })
      })
    }
    // Without Redis the in-process bus is always "connected"; with Redis it is until proven up.
    this.#busConnected = this.#driver === undefined
    if (this.#driver && opts.bus) {
      const wait = Math.max(1000, opts.commandTimeout * 4)
      this.#ready = Promise.all([
        this.#driver.subscribe(
          this.channel,
          (msg) => this.#onBusMessage(msg),
          (up) => this.#onBusState(up),
        ),
        this.#driver.waitReady(wait),
      ]).then(noop)
    } else if (this.#driver) {
      this.#ready = this.#driver.waitReady(Math.max(1000, opts.commandTimeout * 4))
    } else {
      this.#ready = Promise.resolve()
      if (!this.#driver) {
        const peers = localBus.get(opts.namespace) ?? new Set<CacheCore>()
        peers.add(this)
        localBus.set(opts.namespace, peers)
      }
    }
    this.metrics =
      opts.metrics === false
        ? undefined
        : new CacheMetrics(this.#metricSource(), opts.metrics.registry)
    if (opts.hitRateAlert) this.#startHitRateAlert(opts.hitRateAlert)
  }

  /** Resolves once the bus subscription is live (or failed and will retry in background). */
  ready(): Promise<void> {
    return this.#ready
  }

  get busConnected(): boolean {
    return this.#busConnected
  }

  assertOpen(): void {
    if (this.#closed) throw cacheErrors.create('STRATA_CACHE_CLOSED')
  }

  static validateKey(key: unknown): asserts key is string {
    if (typeof key !== 'string' || key === '' || key.startsWith(INTERNAL))
      throw cacheErrors.create('STRATA_CACHE_INVALID_KEY', {
        details: { key: typeof key === 'string' ? key : typeof key },
      })
  }

  tagKey(prefix: string, tag: string): string {
    if (typeof tag !== 'string' || tag === '')
      throw cacheErrors.create('STRATA_CACHE_INVALID_OPTIONS', {
        message: 'tags must be non-empty strings',
      })
    return `${prefix}${INTERNAL}tag:${tag}`
  }

  // ---------------------------------------------------------------- L1 fast paths

  /** A fresh, tag-valid L1 entry or undefined. Synchronous and allocation-free. */
  freshL1(full: string): L1Entry | undefined {
    const e = this.#l1.get(full)
    if (e === undefined) return undefined
    if (e.expiresAt <= coarseNow()) return undefined
    if (e.tags !== undefined && this.#tagState(e) !== OK) return undefined
    return e
  }

  out<T>(value: unknown): T {
    return (this.opts.clone ? structuredClone(value) : value) as T
  }

  /** Counts an L1 hit; samples latency and hot keys on 1 in 64 / 1 in 16 calls. */
  countL1Hit(full: string): void {
    this.#l1c.hits++
    if (this.#sketch !== undefined) this.#sketch.increment(full)
    const s = ++this.#sample
    if ((s & 15) === 0) this.#top.add(full)
    if ((s & 63) === 0) {
      const t0 = performance.now()
      this.#l1.get(full)
      const ms = performance.now() - t0
      this.#l1c.latency.record(ms)
      this.metrics?.observe('l1', 'get', ms / 1000)
    }
    if (this.events.has('cache:hit'))
      this.events.emit('cache:hit', { key: full, tier: 'l1', stale: false })
  }

  peek(full: string): unknown {
    const e = this.freshL1(full)
    return e === undefined ? undefined : this.out(e.value)
  }

  // ---------------------------------------------------------------- getOrSet

  async getOrSetSlow<T>(
    full: string,
    key: string,
    factory: Factory<T>,
    s: EntrySettings,
    tagPrefix: string,
  ): Promise<T> {
    this.assertOpen()
    const now = Date.now()
    let e = this.#l1.get(full)
    if (e !== undefined) {
      if (e.staleUntil <= now) e = undefined
      else if (e.tags !== undefined) {
        let st = this.#tagState(e)
        if (st === UNKNOWN) {
          await this.#ensureTags(e.tags)
          st = this.#tagState(e)
        }
        if (st === INVALID) {
          this.#l1.delete(full)
          e = undefined
        }
      }
      if (e !== undefined && e.expiresAt > Date.now()) {
        this.countL1Hit(full)
        return this.out<T>(e.value)
      }
    }
    this.#l1c.misses++
    if (this.#sketch !== undefined) this.#sketch.increment(full)
    if (this.events.has('cache:miss')) this.events.emit('cache:miss', { key: full })
    const flight = this.#flights.get(full) ?? this.#startFlight(full, key, factory, s, e, tagPrefix)
    const stale = await flight.stale
    if (stale === undefined) return this.out<T>(await flight.fresh)
    const soft = s.soft ?? 0
    if (soft === 0) {
      this.#served(full, 'swr')
      return this.out<T>(stale.value)
    }
    return new Promise<T>((resolve) => {
      const timer = setTimeout(() => {
        this.#served(full, 'soft-timeout')
        resolve(this.out<T>(stale.value))
      }, soft)
      flight.fresh.then(
        (v) => {
          clearTimeout(timer)
          resolve(this.out<T>(v))
        },
        () => {
          clearTimeout(timer)
          this.#served(full, 'factory-error')
          resolve(this.out<T>(stale.value))
        },
      )
    })
  }

  #served(full: string, reason: 'swr' | 'soft-timeout' | 'factory-error'): void {
    this.#staleServed++
    if (this.events.has('cache:stale-served'))
      this.events.emit('cache:stale-served', { key: full, reason })
  }

  #startFlight<T>(
    full: string,
    key: string,
    factory: Factory<T>,
    s: EntrySettings,
    l1stale: L1Entry | undefined,
    tagPrefix: string,
  ): Flight {
    let resolveStale: (e: L1Entry | undefined) => void = noop
    const stale = new Promise<L1Entry | undefined>((r) => (resolveStale = r))
    if (l1stale) resolveStale(l1stale)
    const fresh = this.#fly(full, key, factory, s, l1stale, resolveStale, tagPrefix)
    const flight: Flight = { fresh, stale }
    this.#flights.set(full, flight)
    // The refresh may outlive every caller (stale-while-revalidate): never leave it unhandled.
    const done = (): void => {
      if (this.#flights.get(full) === flight) {
        this.#flights.delete(full)
        this.#wakes.delete(full)
      }
    }
    fresh.then(done, done)
    return flight
  }

  /**
   * One refresh of one key. A plain GET first while L2 reads mostly hit (see #noteProbe); on a
   * miss or a stale value, getOrLock takes the lock and re-reads in one round trip; the winner runs the factory and writes (SET + PUBLISH + unlock in
   * one round trip); losers wait for the PUBLISH on the bus (a bounded fallback timer re-checks),
   * and take over once the lock expires.
   */
  async #fly<T>(
    full: string,
    key: string,
    factory: Factory<T>,
    s: EntrySettings,
    l1stale: L1Entry | undefined,
    resolveStale: (e: L1Entry | undefined) => void,
    tagPrefix: string,
  ): Promise<T> {
    let stale = l1stale
    try {
      const driver = this.#driver
      if (driver === undefined)
        return await this.#produce(full, key, factory, s, stale, undefined, tagPrefix)
      let known: Buffer | undefined
      // Until the L2 miss is counted, stale waiters are not released (an L2 value may be newer).
      let missed = false
      const getFirst = this.#probeHits * 2 >= this.#probes
      if (getFirst) {
        const first = await this.#l2('get', () => driver.get(full))
        if (first === FAILED) {
          this.#l2c.misses++
          resolveStale(stale)
          return await this.#produce(full, key, factory, s, stale, undefined, tagPrefix)
        }
        if (first !== null) {
          const seen = await this.#consider(full, first, stale)
          if (seen.fresh) {
            this.#noteProbe(true)
            resolveStale(undefined)
            return seen.fresh.value as T
          }
          stale = seen.stale
          known = first.subarray(2, 10)
        }
        this.#noteProbe(false)
        this.#l2c.misses++
        resolveStale(stale)
        missed = true
      }
      const token = `${this.origin}:${++this.#tokenSeq}`
      const deadline = s.hard === undefined ? Infinity : Date.now() + s.hard
      let woken = false
      for (;;) {
        if (woken) {
          // A peer's write woke us: its value is almost surely there, so a plain GET (not a lock
          // attempt that would be taken and given back) settles it.
          woken = false
          const cur = await this.#l2('get', () => driver.get(full))
          if (cur !== FAILED && cur !== null && !(known && cur.subarray(2, 10).equals(known))) {
            const seen = await this.#consider(full, cur, stale)
            if (seen.fresh) return seen.fresh.value as T
            stale = seen.stale
            known = cur.subarray(2, 10)
          }
        }
        // A peer's write that lands while getOrLock is in flight must not be missed: note the
        // key's wake count now and compare it when the answer is "busy".
        const wakes = this.#wakes.get(full) ?? 0
        const r = await this.#l2('getOrLock', () =>
          driver.getOrLock(full, token, this.opts.lockTtl, known),
        )
        if (r !== FAILED && r.kind === 'value') {
          const seen = await this.#consider(full, r.value, stale)
          if (seen.fresh) {
            if (!missed) this.#noteProbe(true)
            return seen.fresh.value as T
          }
          stale = seen.stale
          known = r.value.subarray(2, 10)
        }
        if (!missed) {
          if (r !== FAILED) this.#noteProbe(false)
          this.#l2c.misses++
          resolveStale(stale)
          missed = true
        }
        if (r === FAILED)
          return await this.#produce(full, key, factory, s, stale, undefined, tagPrefix)
        if (r.kind === 'value') continue
        if (r.kind === 'acquired')
          return await this.#produce(full, key, factory, s, stale, token, tagPrefix)
        // Busy: another instance is producing. Its PUBLISH wakes us; the timer is only a fallback
        // (short while the bus is down, since then nothing will wake us).
        woken = true
        if ((this.#wakes.get(full) ?? 0) !== wakes) continue
        const wait = Math.min(this.#busConnected ? this.opts.lockTtl : 50, deadline - Date.now())
        if (wait <= 0) {
          this.#factoryTimeouts++
          throw cacheErrors.create('STRATA_CACHE_FACTORY_TIMEOUT', {
            message: 'timed out waiting for another instance to produce the value',
            details: { key },
          })
        }
        await this.#waitForWrite(full, wait)
      }
    } finally {
      resolveStale(undefined)
    }
  }

  /**
   * Judges an L2 value met during a refresh: a fresh, tag-valid one fills L1 and is returned as
   * `fresh`; a valid stale one newer than what we had becomes the new `stale` (and fills L1, so
   * concurrent callers can be answered from it).
   */
  async #consider(
    full: string,
    buf: Buffer,
    stale: L1Entry | undefined,
  ): Promise<{ fresh?: L1Entry; stale: L1Entry | undefined }> {
    const d = this.#decode(buf)
    if (d === undefined) return { stale }
    const now = Date.now()
    let valid = d.staleUntil > now
    if (valid && d.tags) {
      await this.#ensureTags(d.tags)
      valid = this.#tagState(d) === OK
    }
    if (!valid) return { stale }
    const entry = this.#entryFromDecoded(d)
    if (d.expiresAt > now) {
      this.#l2c.hits++
      this.#emitL2Hit(full, false)
      this.#setL1(full, entry)
      return { fresh: entry, stale }
    }
    if (stale === undefined || d.version > stale.version) {
      this.#setL1(full, entry)
      return { stale: entry }
    }
    return { stale }
  }

  /**
   * Records whether a refresh's first L2 read found a fresh value. While most do (L2 hits), a
   * refresh starts with a plain GET and locks only on a miss; while most don't (unique or
   * expired keys), it starts with getOrLock directly: one round trip less per miss (and one
   * less before a stampede's factory starts), at the price of a lock taken and given back on
   * the rarer hits. Decayed so the choice follows the workload.
   */
  #noteProbe(hit: boolean): void {
    if (hit) this.#probeHits++
    if (++this.#probes >= 256) {
      this.#probes /= 2
      this.#probeHits /= 2
    }
  }

  /** Resolves when a peer's write of `full` arrives on the bus, or after `ms`. */
  #waitForWrite(full: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        if (this.#waiters.get(full) === done) this.#waiters.delete(full)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.#waiters.set(full, done)
    })
  }

  async #produce<T>(
    full: string,
    key: string,
    factory: Factory<T>,
    s: EntrySettings,
    stale: L1Entry | undefined,
    lock: string | undefined,
    tagPrefix: string,
  ): Promise<T> {
    let ttl = s.ttl
    let tags = s.tags
    // Closures, not methods: factories may destructure `({ setTtl }) => …`.
    const ctx: FactoryContext<T> = {
      key,
      stale: stale?.value as T | undefined,
      setTtl: (d) => {
        ttl = duration(d, 'ttl') ?? ttl
      },
      setTags: (t) => {
        tags = t.map((tag) => this.tagKey(tagPrefix, tag))
      },
    }
    let value: T
    if (lock !== undefined) this.#holdLock(full, lock)
    try {
      value = await this.#runFactory(key, factory, ctx, s.hard)
    } catch (err) {
      this.#held.delete(full)
      if (lock) void this.#releaseFailed(full, lock)
      if (this.events.has('cache:factory-error'))
        this.events.emit('cache:factory-error', { key: full, error: err })
      throw err
    }
    this.#held.delete(full)
    // L1 is filled synchronously inside write(); callers need not wait for the L2 round trip
    // (peers are woken by its PUBLISH, and the returned promise never rejects).
    try {
      const settings = ttl === s.ttl && tags === s.tags ? s : { ...s, ttl, tags }
      const pending = this.write(full, value, settings, lock)
      this.#pendingWrites.add(pending)
      void pending.then(() => this.#pendingWrites.delete(pending))
    } catch (err) {
      if (lock) void this.#l2('unlock', () => this.#driver!.unlock(full, lock))
      throw err
    }
    return value
  }

  /**
   * While we hold a key's lock its factory is running: keep the lock alive so a slow-but-alive
   * factory is not run twice. One shared timer (not one per miss) extends every held lock each
   * lockTtl/2 and stops itself when nothing is held; a crashed holder stops extending, so
   * waiters take over after one lockTtl.
   */
  #holdLock(full: string, token: string): void {
    this.#held.set(full, token)
    if (this.#keepAlive !== undefined) return
    this.#keepAlive = setInterval(
      () => {
        if (this.#held.size === 0) {
          clearInterval(this.#keepAlive)
          this.#keepAlive = undefined
          return
        }
        for (const [k, t] of this.#held)
          void this.#l2('extendLock', () => this.#driver!.extendLock(k, t, this.opts.lockTtl))
      },
      Math.max(10, this.opts.lockTtl / 2),
    )
    this.#keepAlive.unref()
  }

  #factoryFailed(key: string, err: unknown): Error {
    this.#factoryErrors++
    return cacheErrors.is(err)
      ? err
      : cacheErrors.create('STRATA_CACHE_FACTORY_ERROR', {
          message: `cache factory for "${key}" failed: ${err instanceof Error ? err.message : String(err)}`,
          details: { key },
          cause: err,
        })
  }

  #runFactory<T>(
    key: string,
    factory: Factory<T>,
    ctx: FactoryContext<T>,
    hard: number | undefined,
  ): T | Promise<T> {
    this.#factoryCalls++
    if (hard === undefined) {
      // No timer to race: call it directly (no wrapper promise for a synchronous factory).
      let r: T | Promise<T>
      try {
        r = factory(ctx)
      } catch (err) {
        throw this.#factoryFailed(key, err)
      }
      if (typeof (r as { then?: unknown } | null)?.then === 'function')
        return Promise.resolve(r).catch((err: unknown) => {
          throw this.#factoryFailed(key, err)
        })
      return r
    }
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      let done = false
      if (hard !== undefined) {
        timer = setTimeout(() => {
          done = true
          this.#factoryTimeouts++
          reject(
            cacheErrors.create('STRATA_CACHE_FACTORY_TIMEOUT', {
              details: { key, timeoutMs: hard },
            }),
          )
        }, hard)
      }
      const fail = (err: unknown): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        reject(this.#factoryFailed(key, err))
      }
      try {
        Promise.resolve(factory(ctx)).then((v) => {
          if (done) return
          done = true
          clearTimeout(timer)
          resolve(v)
        }, fail)
      } catch (err) {
        fail(err)
      }
    })
  }

  // ---------------------------------------------------------------- writes

  #lifetime(s: EntrySettings, now: number): { expiresAt: number; staleUntil: number } {
    let ttl = s.ttl
    if (s.jitter > 0) ttl = Math.max(1, ttl * (1 + (Math.random() * 2 - 1) * s.jitter))
    const expiresAt = now + ttl
    return { expiresAt, staleUntil: expiresAt + s.grace }
  }

  /** L1 can't be kept coherent while the bus is down: cap what we keep then. */
  #capForOutage(e: L1Entry, now: number): L1Entry {
    if (this.#busConnected && this.#breaker?.state !== 'open') return e
    const cap = now + this.opts.busOutageTtl
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
    for (const t of tags ?? []) this.#noteTagWrite(t, version)
    const buf = this.#driver
      ? this.#serializer.encode(value, { version, expiresAt, staleUntil, tags })
      : undefined
    const entry: L1Entry = {
      value: this.opts.clone ? structuredClone(value) : value,
      version,
      expiresAt,
      staleUntil,
      tags,
      size: buf ? buf.length : this.#estimate(value),
    }
    return { entry, buf }
  }

  /**
   * Fills L1 synchronously (serialization errors throw here, synchronously) and returns the L2
   * write, which never rejects.
   */
  write(full: string, value: unknown, s: EntrySettings, lockToken?: string): Promise<void> {
    const now = Date.now()
    const version = this.#clock.next()
    const driver = this.#driver
    const { entry, buf } = this.#newEntry(value, s, version, now)
    const { staleUntil } = entry
    this.#setL1(full, this.#capForOutage(entry, now))
    if (this.events.has('cache:set')) this.events.emit('cache:set', { key: full })
    if (!driver) {
      this.#localPublish({ o: this.origin, t: 'set', v: version, k: [full] })
      return Promise.resolve()
    }
    // Same text as JSON.stringify of the BusMessage, without building the object.
    const msg = `${this.#selfTag},"t":"set","v":${version},"k":[${JSON.stringify(full)}]}`
    return this.#l2('set', () =>
      driver.setAndPublish(full, buf!, staleUntil - now, this.channel, msg, lockToken),
    ).then((r) => {
      if (r !== FAILED) this.#busPublished++
      // A write Redis never saw must not outlive the outage in L1 either.
      else this.#capForOutage(entry, now)
    })
  }

  async writeMany(items: { full: string; value: unknown; s: EntrySettings }[]): Promise<void> {
    const now = Date.now()
    const version = this.#clock.next()
    const driver = this.#driver
    const l2items: { key: string; value: Buffer; px: number }[] = []
    const entries: L1Entry[] = []
    for (const { full, value, s } of items) {
      const { entry, buf } = this.#newEntry(value, s, version, now)
      entries.push(entry)
      this.#setL1(full, this.#capForOutage(entry, now))
      if (buf) l2items.push({ key: full, value: buf, px: entry.staleUntil - now })
    }
    const msg: BusMessage = { o: this.origin, t: 'set', v: version, k: items.map((i) => i.full) }
    if (!driver) return this.#localPublish(msg)
    const r = await this.#l2('setMany', () =>
      driver.setManyAndPublish(l2items, this.channel, JSON.stringify(msg)),
    )
    if (r === FAILED) for (const e of entries) this.#capForOutage(e, now)
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

  #setL1(full: string, entry: L1Entry): void {
    if (this.#sketch !== undefined) {
      // W-TinyLFU admission: a new key only replaces the LRU victim when it is more frequent.
      if (this.#l1.size >= this.opts.maxEntries && !this.#l1.has(full)) {
        const victim = this.#l1.rkeys().next().value
        if (victim !== undefined && this.#sketch.frequency(full) <= this.#sketch.frequency(victim))
          return
      }
    }
    this.#l1.set(full, entry)
  }

  /** A decoded entry has exactly L1Entry's fields (same order, same shape): kept as is. */
  #entryFromDecoded(d: DecodedEntry, now = Date.now()): L1Entry {
    this.#clock.observe(d.version)
    return this.#capForOutage(d, now)
  }

  #decode(buf: Buffer): DecodedEntry | undefined {
    try {
      return this.#serializer.decode(buf)
    } catch (err) {
      this.events.emit('cache:error', { op: 'decode', error: err })
      return undefined
    }
  }

  #emitL2Hit(full: string, stale: boolean): void {
    if (this.events.has('cache:hit'))
      this.events.emit('cache:hit', { key: full, tier: 'l2', stale })
  }

  // ---------------------------------------------------------------- reads

  /** Fresh value, else a value within grace, else undefined. */
  async get(full: string): Promise<{ value: unknown } | undefined> {
    this.assertOpen()
    const e = this.freshL1(full)
    if (e !== undefined) {
      this.countL1Hit(full)
      return { value: e.value }
    }
    this.#l1c.misses++
    // Only an entry still in L1 (stale or tag-unknown) needs the async check.
    const l1 = this.#l1.has(full) ? await this.#usableL1(full) : undefined
    const d = await this.#readL2(full)
    if (d !== undefined && (l1 === undefined || d.version >= l1.version)) {
      this.#setL1(full, this.#entryFromDecoded(d))
      return { value: d.value }
    }
    if (l1 !== undefined) {
      this.#staleServed++
      return { value: l1.value }
    }
    if (this.events.has('cache:miss')) this.events.emit('cache:miss', { key: full })
    return undefined
  }

  /** An L1 entry within grace with valid tags (fetching tag versions if needed). */
  async #usableL1(full: string): Promise<L1Entry | undefined> {
    const e = this.#l1.get(full)
    if (e === undefined) return undefined
    if (e.staleUntil <= Date.now()) return undefined
    if (e.tags !== undefined) {
      if (this.#tagState(e) === UNKNOWN) await this.#ensureTags(e.tags)
      if (this.#tagState(e) !== OK) return undefined
    }
    return e
  }

  /** An L2 entry within grace with valid tags, or undefined (miss, error, breaker open). */
  async #readL2(full: string): Promise<DecodedEntry | undefined> {
    const driver = this.#driver
    if (driver === undefined) return undefined
    const buf = await this.#l2('get', () => driver.get(full))
    if (buf === FAILED || buf === null) {
      this.#l2c.misses++
      return undefined
    }
    const d = this.#decode(buf)
    if (d === undefined || d.staleUntil <= Date.now()) {
      this.#l2c.misses++
      return undefined
    }
    if (d.tags) {
      await this.#ensureTags(d.tags)
      if (this.#tagState(d) !== OK) {
        this.#l2c.misses++
        return undefined
      }
    }
    const stale = d.expiresAt <= Date.now()
    if (stale) this.#l2c.misses++
    else this.#l2c.hits++
    this.#emitL2Hit(full, stale)
    return d
  }

  async getMany(fulls: string[]): Promise<({ value: unknown } | undefined)[]> {
    this.assertOpen()
    const out: ({ value: unknown } | undefined)[] = new Array(fulls.length)
    const missIdx: number[] = []
    for (let i = 0; i < fulls.length; i++) {
      const e = this.freshL1(fulls[i]!)
      if (e !== undefined) {
        this.countL1Hit(fulls[i]!)
        out[i] = { value: e.value }
      } else {
        this.#l1c.misses++
        missIdx.push(i)
      }
    }
    const driver = this.#driver
    if (missIdx.length === 0) return out
    const bufs = driver
      ? await this.#l2('mget', () => driver.mget(missIdx.map((i) => fulls[i]!)))
      : FAILED
    let now = Date.now()
    for (let j = 0; j < missIdx.length; j++) {
      const i = missIdx[j]!
      const full = fulls[i]!
      const buf = bufs === FAILED ? null : bufs[j]
      const d = buf ? this.#decode(buf) : undefined
      let ok = d !== undefined && d.staleUntil > now
      if (ok && d!.tags) {
        await this.#ensureTags(d!.tags)
        ok = this.#tagState(d!) === OK
        now = Date.now()
      }
      if (ok) {
        if (d!.expiresAt > now) this.#l2c.hits++
        else this.#l2c.misses++
        this.#setL1(full, this.#entryFromDecoded(d!, now))
        out[i] = { value: d!.value }
      } else {
        if (driver) this.#l2c.misses++
        const l1 = this.#l1.has(full) ? await this.#usableL1(full) : undefined
        out[i] = l1 ? { value: l1.value } : undefined
        now = Date.now()
      }
    }
    return out
  }

  // ---------------------------------------------------------------- invalidation

  async delete(fulls: string[]): Promise<void> {
    this.assertOpen()
    if (fulls.length === 0) return
    const version = this.#clock.next()
    for (const f of fulls) this.#l1.delete(f)
    if (this.events.has('cache:delete')) this.events.emit('cache:delete', { keys: fulls })
    const msg: BusMessage = { o: this.origin, t: 'del', v: version, k: fulls }
    const driver = this.#driver
    if (!driver) return this.#localPublish(msg)
    const r = await this.#l2('delete', () =>
      driver.deleteAndPublish(fulls, this.channel, JSON.stringify(msg)),
    )
    if (r !== FAILED) this.#busPublished++
  }

  async deleteByTags(tagKeys: string[]): Promise<void> {
    this.assertOpen()
    if (tagKeys.length === 0) return
    const version = this.#clock.next()
    this.#applyTag(tagKeys, version)
    if (this.events.has('cache:tag-invalidated'))
      this.events.emit('cache:tag-invalidated', { tags: tagKeys })
    const msg: BusMessage = { o: this.origin, t: 'tag', v: version, g: tagKeys }
    const driver = this.#driver
    if (!driver) return this.#localPublish(msg)
    const r = await this.#l2('deleteByTag', () =>
      driver.setVersionsAndPublish(tagKeys, version, TAG_TTL, this.channel, JSON.stringify(msg)),
    )
    if (r !== FAILED) this.#busPublished++
  }

  /** SCAN + UNLINK under `prefix` matching `pattern` (glob); evicts matching L1 keys everywhere. */
  async deleteByPattern(prefix: string, pattern: string): Promise<number> {
    this.assertOpen()
    const version = this.#clock.next()
    const msg: BusMessage = { o: this.origin, t: 'pattern', v: version, p: prefix, m: pattern }
    let n = this.#applyPattern(prefix, pattern, version)
    const driver = this.#driver
    if (!driver) {
      this.#localPublish(msg)
      return n
    }
    let l2n = 0
    const r = await this.#l2('deleteByPattern', async () => {
      await driver.scan(escapeGlob(prefix) + pattern, async (keys) => {
        const data = keys.filter((k) => !k.slice(prefix.length).startsWith(INTERNAL))
        if (data.length)
          l2n += await driver.deleteAndPublish(data, this.channel, JSON.stringify(msg))
      })
    })
    if (r !== FAILED) {
      this.#busPublished++
      n = Math.max(n, l2n)
    }
    return n
  }

  async clear(prefix: string): Promise<void> {
    this.assertOpen()
    const version = this.#clock.next()
    this.#applyClear(prefix, version)
    if (this.events.has('cache:clear')) this.events.emit('cache:clear', { prefix })
    const msg: BusMessage = { o: this.origin, t: 'clear', v: version, p: prefix }
    const driver = this.#driver
    if (!driver) return this.#localPublish(msg)
    await this.#l2('clear', async () => {
      // Publish first so peers drop L1 at once; the SCAN below only frees Redis memory.
      await driver.publish(this.channel, JSON.stringify(msg))
      await driver.scan(`${escapeGlob(prefix)}*`, async (keys) => {
        await driver.deleteAndPublish(keys, this.channel, JSON.stringify(msg))
      })
    })
  }

  #applyPattern(prefix: string, pattern: string, version: number): number {
    const re = globToRegExp(pattern)
    let n = 0
    for (const [k, e] of this.#l1.entries()) {
      if (k.startsWith(prefix) && e.version < version && re.test(k.slice(prefix.length))) {
        this.#l1.delete(k)
        n++
      }
    }
    return n
  }

  #applyClear(prefix: string, version: number): void {
    for (const [k, e] of this.#l1.entries())
      if (k.startsWith(prefix) && e.version < version) this.#l1.delete(k)
    for (const k of [...this.#tags.keys()]) if (k.startsWith(prefix)) this.#tags.delete(k)
  }

  // ---------------------------------------------------------------- tags

  #tagState(e: { version: number; tags: string[] | undefined }): number {
    const now = coarseNow()
    let state = OK
    for (const t of e.tags!) {
      const s = this.#tags.get(t)
      if (s === undefined) {
        // Without Redis every invalidation is local, so an unseen tag was never invalidated.
        if (this.#driver === undefined) continue
        state = UNKNOWN
        continue
      }
      if (e.version <= s.v) return INVALID
      if (s.until < now || e.version < s.floor) state = UNKNOWN
    }
    return state
  }

  #tagUntil(): number {
    return this.#busConnected ? Infinity : Date.now() + this.opts.busOutageTtl
  }

  /** A fresh write is newer than every invalidation we could know of, so it is known-valid. */
  #noteTagWrite(tag: string, version: number): void {
    if (!this.#tags.has(tag)) this.#tags.set(tag, { v: 0, floor: version, until: this.#tagUntil() })
  }

  #applyTag(tags: string[], version: number): void {
    const until = this.#tagUntil()
    for (const t of tags) {
      const s = this.#tags.get(t)
      this.#tags.set(t, { v: Math.max(s?.v ?? 0, version), floor: 0, until })
    }
  }

  async #ensureTags(tags: string[]): Promise<void> {
    const driver = this.#driver
    if (driver === undefined) return
    const now = Date.now()
    const missing = tags.filter((t) => {
      const s = this.#tags.get(t)
      return s === undefined || s.until < now || s.floor > 0
    })
    if (missing.length === 0) return
    const versions = await this.#l2('tags', () => driver.getVersions(missing))
    const until = this.#tagUntil()
    for (let i = 0; i < missing.length; i++) {
      const t = missing[i]!
      const prev = this.#tags.get(t)
      if (versions === FAILED) {
        // Redis unreachable: trust what we have for a short while rather than miss forever.
        this.#tags.set(t, { v: prev?.v ?? 0, floor: 0, until: now + this.opts.busOutageTtl })
      } else {
        const v = versions[i]!
        this.#clock.observe(v)
        this.#tags.set(t, { v: Math.max(prev?.v ?? 0, v), floor: 0, until })
      }
    }
  }

  // ---------------------------------------------------------------- bus

  #localPublish(msg: BusMessage): void {
    const peers = localBus.get(this.opts.namespace)
    if (!peers) return
    for (const p of peers) {
      if (p === this) continue
      p.#clock.observe(msg.v)
      p.#apply(msg)
    }
    this.#busPublished++
  }

  #onBusMessage(raw: string): void {
    this.#busReceived++
    // Our own writes come back to our subscriber too; they carry nothing we don't know (no
    // local flight can be waiting on its own instance), so skip them before parsing.
    if (raw.startsWith(this.#selfTag)) return
    let msg: BusMessage
    try {
      msg = JSON.parse(raw) as BusMessage
    } catch {
      return
    }
    this.#clock.observe(msg.v)
    if (msg.t === 'set' || msg.t === 'unlock')
      for (const k of msg.k ?? [])
        if (this.#flights.has(k)) {
          this.#wakes.set(k, (this.#wakes.get(k) ?? 0) + 1)
          this.#waiters.get(k)?.()
        }
    if (msg.o === this.origin) return
    this.#apply(msg)
  }

  /**
   * A failed factory gives the lock back and says so on the bus: peers waiting on this key wake
   * and one of them takes over at once, instead of sleeping until the lock TTL runs out.
   */
  async #releaseFailed(full: string, lock: string): Promise<void> {
    const driver = this.#driver!
    if ((await this.#l2('unlock', () => driver.unlock(full, lock))) === FAILED) return
    const msg: BusMessage = { o: this.origin, t: 'unlock', v: this.#clock.next(), k: [full] }
    await this.#l2('publish', () => driver.publish(this.channel, JSON.stringify(msg)))
  }

  /** Applies a peer's change; version checks make a late message harmless to newer entries. */
  #apply(msg: BusMessage): void {
    if (msg.t === 'unlock') return // only wakes waiters; nothing to evict
    switch (msg.t) {
      case 'set':
      case 'del':
        for (const k of msg.k ?? []) {
          const e = this.#l1.peek(k)
          if (e !== undefined && e.version < msg.v) this.#l1.delete(k)
        }
        break
      case 'tag':
        this.#applyTag(msg.g ?? [], msg.v)
        break
      case 'clear':
        this.#applyClear(msg.p ?? '', msg.v)
        break
      case 'pattern':
        this.#applyPattern(msg.p ?? '', msg.m ?? '*', msg.v)
        break
    }
    if (this.events.has('cache:invalidated'))
      this.events.emit('cache:invalidated', {
        kind: msg.t === 'del' ? 'delete' : msg.t,
        keys: msg.k,
        tags: msg.g,
        prefix: msg.p,
        origin: msg.o,
      })
  }

  #onBusState(up: boolean): void {
    this.#busConnected = up
    const now = Date.now()
    if (up) {
      // Messages were missed while down: drop what we can't verify (bounded stale window).
      this.#l1.clear()
      this.#tags.clear()
    } else {
      const cap = now + this.opts.busOutageTtl
      for (const e of this.#l1.values()) if (e.expiresAt > cap) e.expiresAt = cap
      for (const s of this.#tags.values()) if (s.until > cap) s.until = cap
    }
    this.opts.logger.info({ connected: up }, 'strata cache: bus')
    this.events.emit('cache:bus', { connected: up })
  }

  // ---------------------------------------------------------------- L2 guard

  /**
   * Runs an L2 call behind the breaker; never rejects, resolves FAILED instead. Latency goes to
   * the stats histogram on every call but to prom-client on 1 call in 8 (its label hashing costs
   * more than the rest of this guard).
   */
  #l2<T>(op: string, fn: () => Promise<T>): Promise<T | typeof FAILED> {
    const breaker = this.#breaker
    if (breaker === undefined || !breaker.allow()) return Promise.resolve(FAILED)
    const t0 = performance.now()
    let p: Promise<T>
    try {
      p = fn()
    } catch (error) {
      return Promise.resolve(this.#l2Failed(op, error))
    }
    return p.then(
      (r) => {
        breaker.success()
        const ms = performance.now() - t0
        this.#l2c.latency.record(ms)
        if ((this.#l2Sample++ & 7) === 0) this.metrics?.observe('l2', op, ms / 1000)
        return r
      },
      (error: unknown) => this.#l2Failed(op, error),
    )
  }

  #l2Failed(op: string, error: unknown): typeof FAILED {
    this.#breaker!.failure()
    this.#l2c.errors++
    this.opts.logger.debug({ op, err: (error as Error).message }, 'strata cache: L2 error')
    this.events.emit('cache:error', { op, error })
    return FAILED
  }

  // ---------------------------------------------------------------- stats

  #metricSource() {
    return {
      requests: () => [
        { tier: 'l1' as const, result: 'hit' as const, value: this.#l1c.hits },
        { tier: 'l1' as const, result: 'miss' as const, value: this.#l1c.misses },
        { tier: 'l2' as const, result: 'hit' as const, value: this.#l2c.hits },
        { tier: 'l2' as const, result: 'miss' as const, value: this.#l2c.misses },
        { tier: 'l2' as const, result: 'error' as const, value: this.#l2c.errors },
      ],
      factory: () => [
        {
          result: 'ok' as const,
          value: this.#factoryCalls - this.#factoryErrors - this.#factoryTimeouts,
        },
        { result: 'error' as const, value: this.#factoryErrors },
        { result: 'timeout' as const, value: this.#factoryTimeouts },
      ],
      entries: () => [{ tier: 'l1' as const, value: this.#l1.size }],
      breaker: () => this.#breaker?.state,
    }
  }

  stats(): CacheStats {
    const rate = (h: number, m: number): number => (h + m === 0 ? 0 : h / (h + m))
    const l1 = this.#l1c
    const l2 = this.#l2c
    return {
      l1: {
        hits: l1.hits,
        misses: l1.misses,
        hitRate: rate(l1.hits, l1.misses),
        size: this.#l1.size,
        bytes: this.#l1.calculatedSize,
        evictions: l1.evictions,
        latency: { p50: l1.latency.quantile(0.5), p99: l1.latency.quantile(0.99) },
      },
      l2: this.#driver
        ? {
            hits: l2.hits,
            misses: l2.misses,
            hitRate: rate(l2.hits, l2.misses),
            size: -1,
            evictions: 0,
            errors: l2.errors,
            breaker: this.#breaker!.state,
            latency: { p50: l2.latency.quantile(0.5), p99: l2.latency.quantile(0.99) },
          }
        : undefined,
      factory: {
        calls: this.#factoryCalls,
        errors: this.#factoryErrors,
        timeouts: this.#factoryTimeouts,
        staleServed: this.#staleServed,
      },
      bus: {
        connected: this.#busConnected,
        received: this.#busReceived,
        published: this.#busPublished,
      },
      hottestKeys: this.#top.top(10),
    }
  }

  #startHitRateAlert(a: { threshold: number; window: number; minRequests: number }): void {
    let lastHits = 0
    let lastReq = 0
    this.#alertTimer = setInterval(() => {
      const hits = this.#l1c.hits + this.#l2c.hits
      const req = this.#l1c.hits + this.#l1c.misses
      const dh = hits - lastHits
      const dr = req - lastReq
      lastHits = hits
      lastReq = req
      if (dr >= a.minRequests && dh / dr < a.threshold)
        this.events.emit('cache:hit-rate-low', {
          hitRate: dh / dr,
          threshold: a.threshold,
          requests: dr,
        })
    }, a.window)
    this.#alertTimer.unref()
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#alertTimer)
    clearInterval(this.#keepAlive)
    localBus.get(this.opts.namespace)?.delete(this)
    // Let in-flight refreshes settle briefly so their writes are not cut mid-way.
    await Promise.race([
      Promise.allSettled([...this.#flights.values()].map((f) => f.fresh)).then(() =>
        Promise.allSettled([...this.#pendingWrites]),
      ),
      new Promise((r) => setTimeout(r, 100).unref()),
    ])
    await this.#driver?.close()
  }
}

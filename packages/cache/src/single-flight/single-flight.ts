import type { CacheBus } from '../bus/cache-bus.js'
import type { CacheContext } from '../context.js'
import { cacheErrors } from '../errors.js'
import { TAG_INVALID, TAG_UNKNOWN } from '../invalidation/tag-states.js'
import type { TagStates } from '../invalidation/tag-states.js'
import { tagKey } from '../keys.js'
import { FAILED } from '../l2/l2-guard.js'
import type { L2Guard } from '../l2/l2-guard.js'
import { duration } from '../options.js'
import type { L1Entry, L1Store } from '../tiers/l1-store.js'
import type { EntrySettings, TwoTierStore } from '../tiers/two-tier-store.js'
import { FactoryRunner } from './factory-runner.js'
import type { Factory, FactoryContext } from './factory-runner.js'
import { LockKeeper } from './lock-keeper.js'

interface Flight {
  fresh: Promise<unknown>
  stale: Promise<L1Entry | undefined>
}

const noop = (): void => {}

/**
 * getOrSet past an L1 hit: one refresh per key at a time in this process (a flight) and, with
 * L2, across instances (a Redis lock; waiters are woken by the winner's bus message). Serves
 * stale values within grace while a refresh runs (stale-while-revalidate, soft timeout, factory
 * errors).
 */
export class SingleFlight {
  readonly #ctx: CacheContext
  readonly #l1: L1Store
  readonly #tags: TagStates
  readonly #tiers: TwoTierStore
  readonly #bus: CacheBus
  readonly #guard: L2Guard | undefined
  readonly #keeper: LockKeeper | undefined
  readonly #factories: FactoryRunner
  readonly #flights = new Map<string, Flight>()
  readonly #pendingWrites = new Set<Promise<void>>()
  /** The flight waiting for a peer's write of a key (one flight per key, so one waiter). */
  readonly #waiters = new Map<string, () => void>()
  /** Per key with a flight: how many peer writes of it the bus has delivered (see #fly). */
  readonly #wakes = new Map<string, number>()
  /** First L2 reads of refreshes, and how many found a fresh value (see #noteProbe). */
  #probes = 0
  #probeHits = 0
  #tokenSeq = 0

  constructor(
    ctx: CacheContext,
    l1: L1Store,
    tags: TagStates,
    tiers: TwoTierStore,
    bus: CacheBus,
    guard: L2Guard | undefined,
  ) {
    this.#ctx = ctx
    this.#l1 = l1
    this.#tags = tags
    this.#tiers = tiers
    this.#bus = bus
    this.#guard = guard
    this.#keeper = guard && new LockKeeper(guard, ctx.opts.lockTtl)
    this.#factories = new FactoryRunner(ctx.counters)
    bus.onPeerWrite((key) => this.#peerWrote(key))
  }

  /** The L1 lookup within grace (tags checked), then a flight; answers stale when it may. */
  async getOrSet<T>(
    full: string,
    key: string,
    factory: Factory<T>,
    s: EntrySettings,
    tagPrefix: string,
  ): Promise<T> {
    const tiers = this.#tiers
    const now = Date.now()
    let e = this.#l1.get(full)
    if (e !== undefined) {
      if (e.staleUntil <= now) e = undefined
      else if (e.tags !== undefined) {
        let st = this.#tags.verdict(e)
        if (st === TAG_UNKNOWN) {
          await this.#tags.ensure(e.tags)
          st = this.#tags.verdict(e)
        }
        if (st === TAG_INVALID) {
          this.#l1.delete(full)
          e = undefined
        }
      }
      if (e !== undefined && e.expiresAt > Date.now()) {
        tiers.countL1Hit(full)
        return tiers.out<T>(e.value)
      }
    }
    const { counters, events } = this.#ctx
    counters.l1.misses++
    this.#l1.touch(full)
    if (events.has('cache:miss')) events.emit('cache:miss', { key: full })
    const flight = this.#flights.get(full) ?? this.#startFlight(full, key, factory, s, e, tagPrefix)
    const stale = await flight.stale
    if (stale === undefined) return tiers.out<T>(await flight.fresh)
    const soft = s.soft ?? 0
    if (soft === 0) {
      this.#served(full, 'swr')
      return tiers.out<T>(stale.value)
    }
    return new Promise<T>((resolve) => {
      const timer = setTimeout(() => {
        this.#served(full, 'soft-timeout')
        resolve(tiers.out<T>(stale.value))
      }, soft)
      flight.fresh.then(
        (v) => {
          clearTimeout(timer)
          resolve(tiers.out<T>(v))
        },
        () => {
          clearTimeout(timer)
          this.#served(full, 'factory-error')
          resolve(tiers.out<T>(stale.value))
        },
      )
    })
  }

  /** Lets running refreshes and their L2 writes finish, for at most `ms`. */
  async settle(ms: number): Promise<void> {
    await Promise.race([
      Promise.allSettled([...this.#flights.values()].map((f) => f.fresh)).then(() =>
        Promise.allSettled([...this.#pendingWrites]),
      ),
      new Promise((r) => setTimeout(r, ms).unref()),
    ])
  }

  close(): void {
    this.#keeper?.close()
  }

  #served(full: string, reason: 'swr' | 'soft-timeout' | 'factory-error'): void {
    this.#ctx.counters.staleServed++
    if (this.#ctx.events.has('cache:stale-served'))
      this.#ctx.events.emit('cache:stale-served', { key: full, reason })
  }

  /** A peer wrote `full` or gave up producing it: wake our flight waiting on it, if any. */
  #peerWrote(full: string): void {
    if (!this.#flights.has(full)) return
    this.#wakes.set(full, (this.#wakes.get(full) ?? 0) + 1)
    this.#waiters.get(full)?.()
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
   * miss or a stale value, getOrLock takes the lock and re-reads in one round trip; the winner
   * runs the factory and writes (SET + PUBLISH + unlock in one round trip); losers wait for the
   * PUBLISH on the bus (a bounded fallback timer re-checks), and take over once the lock expires.
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
      const guard = this.#guard
      if (guard === undefined)
        return await this.#produce(full, key, factory, s, stale, undefined, tagPrefix)
      const tiers = this.#tiers
      const l2 = this.#ctx.counters.l2
      let known: Buffer | undefined
      // Until the L2 miss is counted, stale waiters are not released (an L2 value may be newer).
      let missed = false
      const getFirst = this.#probeHits * 2 >= this.#probes
      if (getFirst) {
        const first = await guard.run('get', (d) => d.get(full))
        if (first === FAILED) {
          l2.misses++
          resolveStale(stale)
          return await this.#produce(full, key, factory, s, stale, undefined, tagPrefix)
        }
        if (first !== null) {
          const seen = await tiers.consider(full, first, stale)
          if (seen.fresh) {
            this.#noteProbe(true)
            resolveStale(undefined)
            return seen.fresh.value as T
          }
          stale = seen.stale
          known = first.subarray(2, 10)
        }
        this.#noteProbe(false)
        l2.misses++
        resolveStale(stale)
        missed = true
      }
      const token = `${this.#ctx.origin}:${++this.#tokenSeq}`
      const lockTtl = this.#ctx.opts.lockTtl
      const deadline = s.hard === undefined ? Infinity : Date.now() + s.hard
      let woken = false
      for (;;) {
        if (woken) {
          // A peer's write woke us: its value is almost surely there, so a plain GET (not a lock
          // attempt that would be taken and given back) settles it.
          woken = false
          const cur = await guard.run('get', (d) => d.get(full))
          if (cur !== FAILED && cur !== null && !(known && cur.subarray(2, 10).equals(known))) {
            const seen = await tiers.consider(full, cur, stale)
            if (seen.fresh) return seen.fresh.value as T
            stale = seen.stale
            known = cur.subarray(2, 10)
          }
        }
        // A peer's write that lands while getOrLock is in flight must not be missed: note the
        // key's wake count now and compare it when the answer is "busy".
        const wakes = this.#wakes.get(full) ?? 0
        const r = await guard.run('getOrLock', (d) => d.getOrLock(full, token, lockTtl, known))
        if (r !== FAILED && r.kind === 'value') {
          const seen = await tiers.consider(full, r.value, stale)
          if (seen.fresh) {
            if (!missed) this.#noteProbe(true)
            return seen.fresh.value as T
          }
          stale = seen.stale
          known = r.value.subarray(2, 10)
        }
        if (!missed) {
          if (r !== FAILED) this.#noteProbe(false)
          l2.misses++
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
        const wait = Math.min(this.#ctx.busConnected ? lockTtl : 50, deadline - Date.now())
        if (wait <= 0) {
          this.#ctx.counters.factoryTimeouts++
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

  /** Runs the factory (holding `lock`, if any) and writes its value; a failure gives the lock back. */
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
        tags = t.map((tag) => tagKey(tagPrefix, tag))
      },
    }
    let value: T
    if (lock !== undefined) this.#keeper?.hold(full, lock)
    try {
      value = await this.#factories.run(key, factory, ctx, s.hard)
    } catch (err) {
      this.#keeper?.drop(full)
      if (lock) void this.#releaseFailed(full, lock)
      if (this.#ctx.events.has('cache:factory-error'))
        this.#ctx.events.emit('cache:factory-error', { key: full, error: err })
      throw err
    }
    this.#keeper?.drop(full)
    // L1 is filled synchronously inside write(); callers need not wait for the L2 round trip
    // (peers are woken by its PUBLISH, and the returned promise never rejects).
    try {
      const settings = ttl === s.ttl && tags === s.tags ? s : { ...s, ttl, tags }
      const pending = this.#tiers.write(full, value, settings, lock)
      this.#pendingWrites.add(pending)
      void pending.then(() => this.#pendingWrites.delete(pending))
    } catch (err) {
      if (lock) void this.#guard?.run('unlock', (d) => d.unlock(full, lock))
      throw err
    }
    return value
  }

  /**
   * A failed factory gives the lock back and says so on the bus: peers waiting on this key wake
   * and one of them takes over at once, instead of sleeping until the lock TTL runs out.
   */
  async #releaseFailed(full: string, lock: string): Promise<void> {
    const guard = this.#guard
    if (!guard || (await guard.run('unlock', (d) => d.unlock(full, lock))) === FAILED) return
    const { origin, clock } = this.#ctx
    await this.#bus.publish({ o: origin, t: 'unlock', v: clock.next(), k: [full] })
  }
}

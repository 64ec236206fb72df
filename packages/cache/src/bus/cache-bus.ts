import type { CacheContext } from '../context.js'
import { globToRegExp } from '../glob.js'
import type { TagStates } from '../invalidation/tag-states.js'
import type { L2Guard } from '../l2/l2-guard.js'
import { busChannel } from '../keys.js'
import type { L1Store } from '../tiers/l1-store.js'
import type { BusMessage } from './bus-message.js'

/** In-process bus for caches without Redis: same-namespace instances invalidate each other. */
const localBus = new Map<string, Set<CacheBus>>()

/**
 * The invalidation bus: carries every write and invalidation to the other instances (Redis
 * pub/sub, or the in-process registry without L2) and applies theirs to this instance's L1 and
 * tag states. Version checks make a late message harmless to newer entries.
 */
export class CacheBus {
  readonly channel: string
  readonly #ctx: CacheContext
  readonly #l1: L1Store
  readonly #tags: TagStates
  readonly #guard: L2Guard | undefined
  /** Every message this instance publishes starts with this (JSON key order is fixed). */
  readonly #selfTag: string
  #onPeerWrite: (key: string) => void = () => {}

  constructor(
    ctx: CacheContext,
    rootPrefix: string,
    l1: L1Store,
    tags: TagStates,
    guard: L2Guard | undefined,
  ) {
    this.#ctx = ctx
    this.#l1 = l1
    this.#tags = tags
    this.#guard = guard
    this.channel = busChannel(rootPrefix)
    this.#selfTag = `{"o":"${ctx.origin}"`
  }

  /**
   * Starts listening: subscribes on L2 (resolves once subscribed, or given up on and retrying in
   * the background), or joins the in-process registry without L2.
   */
  start(): Promise<void> {
    const guard = this.#guard
    if (guard === undefined) {
      const ns = this.#ctx.opts.namespace
      const peers = localBus.get(ns) ?? new Set<CacheBus>()
      peers.add(this)
      localBus.set(ns, peers)
      return Promise.resolve()
    }
    if (!this.#ctx.opts.bus) return Promise.resolve()
    return guard.driver.subscribe(
      this.channel,
      (msg) => this.#onMessage(msg),
      (up) => this.#onState(up),
    )
  }

  /** Leaves the in-process registry (the driver's subscriber closes with the driver). */
  stop(): void {
    localBus.get(this.#ctx.opts.namespace)?.delete(this)
  }

  /** Called for each key a peer wrote (or gave up producing) while single-flight may wait on it. */
  onPeerWrite(fn: (key: string) => void): void {
    this.#onPeerWrite = fn
  }

  encode(msg: BusMessage): string {
    return JSON.stringify(msg)
  }

  /** The text of a one-key 'set' message: JSON.stringify's output, without building the object. */
  setMessage(version: number, full: string): string {
    return `${this.#selfTag},"t":"set","v":${version},"k":[${JSON.stringify(full)}]}`
  }

  /** Counts a message that went out through L2 (with a write or on its own). */
  published(): void {
    this.#ctx.counters.busPublished++
  }

  /** Delivers `msg` to the same-namespace caches of this process (no L2). */
  publishLocal(msg: BusMessage): void {
    const peers = localBus.get(this.#ctx.opts.namespace)
    if (!peers) return
    for (const p of peers) {
      if (p === this) continue
      p.#ctx.clock.observe(msg.v)
      p.#apply(msg)
    }
    this.published()
  }

  /** Publishes a message on its own, not along with an L2 write (never rejects). */
  async publish(msg: BusMessage): Promise<void> {
    await this.#guard?.run('publish', (d) => d.publish(this.channel, this.encode(msg)))
  }

  #onMessage(raw: string): void {
    this.#ctx.counters.busReceived++
    // Our own writes come back to our subscriber too; they carry nothing we don't know (no
    // local flight can be waiting on its own instance), so skip them before parsing.
    if (raw.startsWith(this.#selfTag)) return
    let msg: BusMessage
    try {
      msg = JSON.parse(raw) as BusMessage
    } catch {
      return
    }
    this.#ctx.clock.observe(msg.v)
    if (msg.t === 'set' || msg.t === 'unlock') for (const k of msg.k ?? []) this.#onPeerWrite(k)
    if (msg.o === this.#ctx.origin) return
    this.#apply(msg)
  }

  /** Applies a peer's change to L1 and tag states. */
  #apply(msg: BusMessage): void {
    if (msg.t === 'unlock') return // only wakes waiters; nothing to evict
    switch (msg.t) {
      case 'set':
      case 'del':
        this.#l1.evictOlder(msg.k ?? [], msg.v)
        break
      case 'tag':
        this.#tags.invalidate(msg.g ?? [], msg.v)
        break
      case 'clear':
        this.#l1.evictPrefix(msg.p ?? '', msg.v)
        this.#tags.forgetPrefix(msg.p ?? '')
        break
      case 'pattern':
        this.#l1.evictMatching(msg.p ?? '', globToRegExp(msg.m ?? '*'), msg.v)
        break
    }
    const events = this.#ctx.events
    if (events.has('cache:invalidated'))
      events.emit('cache:invalidated', {
        kind: msg.t === 'del' ? 'delete' : msg.t,
        keys: msg.k,
        tags: msg.g,
        prefix: msg.p,
        origin: msg.o,
      })
  }

  #onState(up: boolean): void {
    const ctx = this.#ctx
    ctx.busConnected = up
    if (up) {
      // Messages were missed while down: drop what we can't verify (bounded stale window).
      this.#l1.clear()
      this.#tags.clear()
    } else {
      const cap = Date.now() + ctx.opts.busOutageTtl
      this.#l1.capExpiry(cap)
      this.#tags.capUntil(cap)
    }
    ctx.opts.logger.info({ connected: up }, 'strata cache: bus')
    ctx.events.emit('cache:bus', { connected: up })
  }
}

import type { Registry } from 'prom-client'
import { CacheCore } from './cache-core.js'
import { cacheErrors } from './errors.js'
import type { CacheEventName, CacheListener } from './events.js'
import { tagKey, validateKey } from './keys.js'
import type { L2Driver } from './l2/driver.js'
import { IoRedisDriver } from './l2/ioredis-driver.js'
import { resolveEntryDefaults, resolveOptions } from './options.js'
import type {
  CacheOptions,
  EntryOptions,
  ResolvedEntryDefaults,
  ResolvedOptions,
} from './options.js'
import type { Factory } from './single-flight/factory-runner.js'
import type { CacheStats } from './stats/stats-reporter.js'
import type { EntrySettings } from './tiers/two-tier-store.js'
import { runWarm } from './warm.js'
import type { WarmOptions, WarmResult, WarmTask } from './warm.js'

export interface SetManyItem<T = unknown> extends EntryOptions {
  key: string
  value: T
}

/**
 * A cache, or a namespace view of one: views share tiers, bus and stats with their parent and
 * add a key prefix and their own entry defaults.
 */
export class Cache {
  readonly #core: CacheCore
  readonly #prefix: string
  readonly #defaults: ResolvedEntryDefaults
  readonly #settings: EntrySettings

  /** @internal use createCache() */
  constructor(core: CacheCore, prefix: string, defaults: ResolvedEntryDefaults) {
    this.#core = core
    this.#prefix = prefix
    this.#defaults = defaults
    this.#settings = { ...defaults, tags: undefined }
  }

  /** Full key prefix of this view in Redis (`<namespace>:[<view>:]...`). */
  get prefix(): string {
    return this.#core.rootPrefix + this.#prefix
  }

  /** The prom-client Registry holding this cache's metrics (undefined with `metrics: false`). */
  get registry(): Registry | undefined {
    return this.#core.metrics?.registry
  }

  #settingsFor(opts: EntryOptions | undefined): EntrySettings {
    if (opts === undefined) return this.#settings
    const r = resolveEntryDefaults(opts, this.#defaults)
    return { ...r, tags: opts.tags?.map((t) => tagKey(this.#prefix, t)) }
  }

  /** Key relative to the root namespace; the root view uses the caller's string as is. */
  #full(key: string): string {
    validateKey(key)
    return this.#prefix === '' ? key : this.#prefix + key
  }

  /**
   * Returns the cached value or runs `factory` once (per process, and across instances with
   * Redis) and caches its result. An L1 hit is a direct LRU lookup, no promise chain.
   */
  getOrSet<T>(key: string, factory: Factory<T>, opts?: EntryOptions): Promise<T> {
    const full = this.#prefix === '' ? key : this.#prefix + key
    const tiers = this.#core.tiers
    const e = tiers.freshL1(full)
    if (e !== undefined) {
      tiers.countL1Hit(full)
      return Promise.resolve(tiers.out<T>(e.value))
    }
    return this.#getOrSetSlow(full, key, factory, opts)
  }

  #getOrSetSlow<T>(
    full: string,
    key: string,
    factory: Factory<T>,
    opts?: EntryOptions,
  ): Promise<T> {
    // Not async: the core's promise is returned as is (bad input still rejects, never throws).
    let s: EntrySettings
    try {
      validateKey(key)
      if (typeof factory !== 'function')
        throw cacheErrors.create('STRATA_CACHE_INVALID_OPTIONS', {
          message: 'factory must be a function',
        })
      s = this.#settingsFor(opts)
      this.#core.assertOpen()
    } catch (err) {
      return Promise.reject(err as Error)
    }
    return this.#core.flights.getOrSet(full, key, factory, s, this.#prefix)
  }

  /** The fresh value, else one within grace, else undefined. */
  async get<T>(key: string): Promise<T | undefined> {
    const r = await this.#read(this.#full(key))
    return r === undefined ? undefined : this.#core.tiers.out<T>(r.value)
  }

  #read(full: string): Promise<{ value: unknown } | undefined> {
    this.#core.assertOpen()
    return this.#core.tiers.get(full)
  }

  async set<T>(key: string, value: T, opts?: EntryOptions): Promise<void> {
    const full = this.#full(key)
    this.#core.assertOpen()
    await this.#core.tiers.write(full, value, this.#settingsFor(opts))
  }

  async has(key: string): Promise<boolean> {
    return (await this.#read(this.#full(key))) !== undefined
  }

  /** Synchronous L1-only read of a fresh value; never touches Redis. */
  peek<T>(key: string): T | undefined {
    const tiers = this.#core.tiers
    const e = tiers.freshL1(this.#prefix === '' ? key : this.#prefix + key)
    return e === undefined ? undefined : tiers.out<T>(e.value)
  }

  async delete(key: string): Promise<void> {
    await this.#delete([this.#full(key)])
  }

  async deleteMany(keys: string[]): Promise<void> {
    await this.#delete(keys.map((k) => this.#full(k)))
  }

  #delete(fulls: string[]): Promise<void> {
    this.#core.assertOpen()
    return this.#core.invalidation.delete(fulls)
  }

  /** Lazily invalidates every entry carrying any of the tags (no key scan). */
  async deleteByTag(tags: string | string[]): Promise<void> {
    const list = Array.isArray(tags) ? tags : [tags]
    const tagKeys = list.map((t) => tagKey(this.#prefix, t))
    this.#core.assertOpen()
    await this.#core.invalidation.deleteByTags(tagKeys)
  }

  /** Deletes keys of this namespace matching a Redis glob (SCAN + UNLINK; not for hot paths). */
  async deleteByPattern(pattern: string): Promise<number> {
    if (typeof pattern !== 'string' || pattern === '')
      throw cacheErrors.create('STRATA_CACHE_INVALID_OPTIONS', {
        message: 'pattern must be a non-empty string',
      })
    this.#core.assertOpen()
    return this.#core.invalidation.deleteByPattern(this.#prefix, pattern)
  }

  /** Deletes every key of this namespace (and its sub-namespaces); never FLUSHALL. */
  async clear(): Promise<void> {
    this.#core.assertOpen()
    await this.#core.invalidation.clear(this.#prefix)
  }

  async getMany<T>(keys: string[]): Promise<(T | undefined)[]> {
    const fulls = keys.map((k) => this.#full(k))
    this.#core.assertOpen()
    const tiers = this.#core.tiers
    const res = await tiers.getMany(fulls)
    return res.map((r) => (r === undefined ? undefined : tiers.out<T>(r.value)))
  }

  /** Writes all items with one pipeline (SETs + one PUBLISH). */
  async setMany<T>(items: SetManyItem<T>[]): Promise<void> {
    this.#core.assertOpen()
    await this.#core.tiers.writeMany(
      items.map((i) => ({ full: this.#full(i.key), value: i.value, s: this.#settingsFor(i) })),
    )
  }

  /** A view with its own prefix (`<prefix><name>:`) and entry defaults. */
  namespace(name: string, defaults: EntryOptions = {}): Cache {
    validateKey(name)
    return new Cache(
      this.#core,
      `${this.#prefix}${name}:`,
      resolveEntryDefaults(defaults, this.#defaults),
    )
  }

  /** Populates keys by priority with bounded concurrency and retries; reports progress. */
  warm(tasks: WarmTask[], opts: WarmOptions = {}): Promise<WarmResult> {
    for (const t of tasks) validateKey(t.key)
    return runWarm(
      tasks,
      opts,
      (task, value) => this.set(task.key, value, task),
      (p) =>
        this.#core.events.emit('cache:warm-progress', {
          done: p.done,
          failed: p.failed,
          total: p.total,
        }),
    )
  }

  stats(): CacheStats {
    return this.#core.stats()
  }

  on<E extends CacheEventName>(event: E, fn: CacheListener<E>): this {
    this.#core.events.on(event, fn)
    return this
  }

  off<E extends CacheEventName>(event: E, fn: CacheListener<E>): this {
    this.#core.events.off(event, fn)
    return this
  }

  /** Resolves once the invalidation bus is subscribed (never rejects). */
  ready(): Promise<void> {
    return this.#core.ready()
  }

  /** True while the invalidation bus is live (always true without Redis). */
  get busConnected(): boolean {
    return this.#core.busConnected
  }

  /** Closes the Redis connections the cache opened (shared by all views). */
  close(): Promise<void> {
    return this.#core.close()
  }
}

/**
 * Creates a cache: L1 always, L2 + bus when `l2` is given (`redis`: a URL or ioredis client the
 * cache connects through an IoRedisDriver; `driver`: one built by the caller). Options are
 * validated once.
 */
export function createCache(options: CacheOptions = {}): Cache {
  const opts = resolveOptions(options)
  const core = new CacheCore(opts, l2Driver(opts))
  return new Cache(core, '', opts.entry)
}

function l2Driver(opts: Readonly<ResolvedOptions>): L2Driver | undefined {
  const l2 = opts.l2
  if (l2 === undefined) return undefined
  if (l2.driver !== undefined) return l2.driver
  return new IoRedisDriver(l2.redis, {
    keyPrefix: `${opts.namespace}:`,
    commandTimeout: opts.commandTimeout,
    maxOfflineQueue: opts.maxOfflineQueue,
    autoPipelining: opts.autoPipelining,
    logger: opts.logger,
  })
}

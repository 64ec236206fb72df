import { createRequire } from 'node:module'
import type * as IoRedisModule from 'ioredis'
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { parseRedisTarget, silentLogger } from '@strata/core'
import type { Logger } from '@strata/core'
import { escapeGlob } from '../glob.js'
import type { L2Driver, LockResult } from './driver.js'
import { scripts } from './scripts/index.js'

/** A URL (`redis://…`, `redis+cluster://h:p,h:p` or a comma list), or an ioredis client. */
export type RedisInput = string | Redis | Cluster

export interface IoRedisDriverOptions {
  /** Prepended to every key: the cache's namespace followed by `:`. */
  keyPrefix: string
  /** Per-command timeout of a client created from a URL, in ms. @defaultValue 200 */
  commandTimeout?: number
  /** Commands issued while disconnected beyond this are rejected at once. @defaultValue 1000 */
  maxOfflineQueue?: number
  /** ioredis auto-pipelining for a client created from a URL. @defaultValue false */
  autoPipelining?: boolean
  logger?: Logger
}

/** The commands `scripts` defines on the client (ioredis adds a `…Buffer` variant of each). */
interface ScriptCommands {
  strataSetPub(...args: (string | number | Buffer)[]): Promise<unknown>
  strataGetOrLockBuffer(...args: (string | number | Buffer)[]): Promise<[number, Buffer?]>
  strataDelPub(...args: (string | number)[]): Promise<number>
  strataVersionsPub(...args: (string | number)[]): Promise<unknown>
  strataUnlock(key: string, token: string): Promise<unknown>
  strataUnlockPub(key: string, token: string, channel: string, msg: string): Promise<unknown>
  strataExtend(key: string, token: string, px: number): Promise<unknown>
}
type Client = (Redis | Cluster) & ScriptCommands

let ioredis: typeof IoRedisModule | undefined
/**
 * ioredis is loaded on the first driver, not when the package is imported, so an L1-only cache
 * never pays for it. It is CommonJS, so a synchronous require keeps createCache synchronous.
 */
function loadIoredis(): typeof IoRedisModule {
  return (ioredis ??= createRequire(import.meta.url)('ioredis') as typeof IoRedisModule)
}

/**
 * The L2 driver on ioredis (single node or Cluster). ioredis over node-redis: it was the faster
 * client in `bench/src/redis-clients.bench.ts`, has a per-command `commandTimeout` (armed even for
 * offline-queued commands), Cluster with the same API, and `duplicate()` for the subscriber.
 */
export class IoRedisDriver implements L2Driver {
  readonly keyPrefix: string
  readonly isCluster: boolean
  readonly #client: Client
  readonly #owned: boolean
  readonly #commandTimeout: number
  readonly #maxOfflineQueue: number
  readonly #logger: Logger
  #sub: Redis | Cluster | undefined
  #offline = 0
  #closed = false
  /** A command was already written in this tick (see #coalesce). */
  #tickOpen = false
  /** The socket corked for the rest of this tick, if any. */
  #corked: Redis['stream'] | undefined
  readonly #endTick = (): void => {
    this.#tickOpen = false
    const s = this.#corked
    this.#corked = undefined
    s?.uncork()
  }

  /** Connects to a URL (the driver owns and closes that client), or uses a client you own. */
  constructor(input: RedisInput, opts: IoRedisDriverOptions) {
    const { Cluster, Redis } = loadIoredis()
    this.keyPrefix = opts.keyPrefix
    this.#commandTimeout = opts.commandTimeout ?? 200
    this.#maxOfflineQueue = opts.maxOfflineQueue ?? 1000
    this.#logger = opts.logger ?? silentLogger
    const redisOptions: RedisOptions = {
      commandTimeout: this.#commandTimeout,
      enableAutoPipelining: opts.autoPipelining ?? false,
      // Fail queued commands at the first connection loss instead of replaying them 20 times.
      maxRetriesPerRequest: 0,
      connectTimeout: Math.max(1000, this.#commandTimeout * 4),
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    }
    let client: Redis | Cluster
    if (typeof input === 'string') {
      const target = parseRedisTarget(input)
      client = target.cluster
        ? new Cluster(target.nodes, {
            redisOptions: { ...redisOptions, password: target.password, username: target.username },
            clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
          })
        : new Redis(target.url, redisOptions)
      this.#owned = true
    } else {
      client = input
      this.#owned = false
      if (input instanceof Redis && input.options.commandTimeout === undefined)
        this.#logger.warn('strata cache: the given ioredis client has no commandTimeout')
    }
    client.on('error', (err: Error) => this.#logger.debug({ err }, 'strata cache: redis error'))
    this.isCluster = client instanceof Cluster
    for (const [name, script] of Object.entries(scripts)) client.defineCommand(name, script)
    this.#client = client as Client
  }

  ready(): boolean {
    return this.#client.status === 'ready'
  }

  waitReady(ms: number): Promise<void> {
    if (this.#client.status === 'ready') return Promise.resolve()
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.#client.off('ready', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.#client.once('ready', done)
    })
  }

  /**
   * Bounds what waits while disconnected: ioredis queues without limit, so past maxOfflineQueue
   * we reject at once. A Cluster's own offline queue is not covered by commandTimeout, so a
   * timer guards commands issued while it is not ready.
   */
  #run<T>(fn: () => Promise<T>): Promise<T> {
    const status = this.#client.status
    if (status === 'ready') {
      if (!this.isCluster) this.#coalesce()
      return fn()
    }
    if (this.#closed) return Promise.reject(new Error('strata cache: driver closed'))
    // A connection that failed or dropped is known to be down: fail now (the breaker counts it)
    // rather than queue for commandTimeout. Commands at start-up ('connecting') still queue.
    if (status === 'reconnecting' || status === 'end' || status === 'close')
      return Promise.reject(new Error(`strata cache: redis ${status}`))
    if (this.#offline >= this.#maxOfflineQueue)
      return Promise.reject(new Error('strata cache: redis offline queue full'))
    this.#offline++
    let p = fn()
    if (this.isCluster) p = withTimeout(p, this.#commandTimeout)
    return p.finally(() => this.#offline--)
  }

  /**
   * Coalesces the commands issued in one tick into one socket write: the first goes out at once
   * (no added latency when calls come one at a time, e.g. the lock request that a stampede's
   * factory waits for), the rest are corked until nextTick and leave in one writev. ioredis
   * writes each command with its own syscall, which dominated the miss path's CPU with many
   * calls in flight; corking beat enableAutoPipelining there. Single node only (a Cluster spreads
   * commands over many sockets).
   */
  #coalesce(): void {
    if (this.#corked !== undefined) return
    if (!this.#tickOpen) {
      this.#tickOpen = true
      process.nextTick(this.#endTick)
      return
    }
    const s = (this.#client as Redis).stream
    if (s === undefined || !s.writable) return
    s.cork()
    this.#corked = s
  }

  #k(key: string): string {
    return this.keyPrefix + key
  }

  get(key: string): Promise<Buffer | null> {
    const k = this.#k(key)
    return this.#run(() => this.#client.getBuffer(k))
  }

  async mget(keys: string[]): Promise<(Buffer | null)[]> {
    if (keys.length === 0) return []
    // Cluster MGET must stay in one slot; per-key GETs to each node are the portable path.
    if (this.isCluster) return Promise.all(keys.map((k) => this.get(k)))
    return this.#run(() => this.#client.mgetBuffer(keys.map((k) => this.#k(k))))
  }

  async setAndPublish(
    key: string,
    value: Buffer,
    px: number,
    channel: string,
    msg: string,
    lockToken?: string,
  ): Promise<void> {
    const ms = Math.max(1, Math.ceil(px))
    const k = this.#k(key)
    if (!this.isCluster) {
      // One connection executes in order, so SET lands before the unlock and the PUBLISH: a
      // peer woken by the message (or taking the lock next) reads the new value. Sent together.
      const c = this.#client
      await this.#run(() =>
        Promise.all([
          c.set(k, value, 'PX', ms),
          lockToken === undefined
            ? c.publish(channel, msg)
            : c.strataUnlockPub(lockKeyFor(k), lockToken, channel, msg),
        ]),
      )
      return
    }
    // Cluster: the PUBLISH may go to another node than the SET, so keep SET + PUBLISH (+ unlock)
    // atomic in one script on the key's node (lock keys hash-tag the data key's slot).
    const lockKey = lockKeyFor(k)
    if (lockToken !== undefined && !sameSlot(k, lockKey)) {
      await this.#run(() => this.#client.strataSetPub(1, k, value, ms, channel, msg))
      await this.unlock(key, lockToken)
    } else if (lockToken !== undefined) {
      await this.#run(() =>
        this.#client.strataSetPub(2, k, lockKey, value, ms, channel, msg, lockToken),
      )
    } else {
      await this.#run(() => this.#client.strataSetPub(1, k, value, ms, channel, msg))
    }
  }

  async getOrLock(
    key: string,
    token: string,
    px: number,
    knownVersion: Buffer | undefined,
  ): Promise<LockResult> {
    const ms = Math.max(1, Math.ceil(px))
    const k = this.#k(key)
    const lockKey = lockKeyFor(k)
    if (!this.isCluster) {
      // SET NX then GET, sent together (plain commands cost Redis far less than a script). The
      // GET runs after the lock attempt, so a holder that wrote and unlocked before our SET NX is
      // always seen: same outcome as GET-then-lock in one script. A lock taken in the rare case
      // where the value turned out to be there already is given back.
      const c = this.#client
      const [locked, current] = await this.#run(() =>
        Promise.all([c.set(lockKey, token, 'PX', ms, 'NX'), c.getBuffer(k)]),
      )
      if (current && (!knownVersion || !current.subarray(2, 10).equals(knownVersion))) {
        if (locked === 'OK') this.unlock(key, token).catch(() => {})
        return { kind: 'value', value: current }
      }
      return locked === 'OK' ? { kind: 'acquired' } : { kind: 'busy' }
    }
    if (!sameSlot(k, lockKey)) {
      // Cross-slot: two round trips (lock, then re-read), same outcome.
      const current = await this.get(key)
      if (current && (!knownVersion || !current.subarray(2, 10).equals(knownVersion)))
        return { kind: 'value', value: current }
      const ok = await this.#run(() => this.#client.set(lockKey, token, 'PX', ms, 'NX'))
      return ok === 'OK' ? { kind: 'acquired' } : { kind: 'busy' }
    }
    const [code, value] = await this.#run(() =>
      this.#client.strataGetOrLockBuffer(k, lockKey, token, ms, knownVersion ?? ''),
    )
    if (Number(code) === 0 && value) return { kind: 'value', value }
    return Number(code) === 1 ? { kind: 'acquired' } : { kind: 'busy' }
  }

  async setManyAndPublish(
    items: { key: string; value: Buffer; px: number }[],
    channel: string,
    msg: string,
  ): Promise<void> {
    if (items.length === 0) return
    if (this.isCluster) {
      await Promise.all(
        items.map((i) =>
          this.#run(() =>
            this.#client.set(this.#k(i.key), i.value, 'PX', Math.max(1, Math.ceil(i.px))),
          ),
        ),
      )
      await this.publish(channel, msg)
      return
    }
    await this.#run(async () => {
      const p = (this.#client as Redis).pipeline()
      for (const i of items) p.set(this.#k(i.key), i.value, 'PX', Math.max(1, Math.ceil(i.px)))
      p.publish(channel, msg)
      const res = await p.exec()
      const failed = res?.find(([err]) => err)
      if (failed) throw failed[0]
    })
  }

  async deleteAndPublish(keys: string[], channel: string, msg: string): Promise<number> {
    if (keys.length === 0) return 0
    const ks = keys.map((k) => this.#k(k))
    if (this.isCluster) {
      const counts = await Promise.all(ks.map((k) => this.#run(() => this.#client.unlink(k))))
      await this.publish(channel, msg)
      return counts.reduce((a, b) => a + b, 0)
    }
    return this.#run(() => this.#client.strataDelPub(ks.length, ...ks, channel, msg))
  }

  async setVersionsAndPublish(
    keys: string[],
    version: number,
    px: number,
    channel: string,
    msg: string,
  ): Promise<void> {
    const ks = keys.map((k) => this.#k(k))
    if (this.isCluster) {
      await Promise.all(
        ks.map((k) => this.#run(() => this.#client.set(k, String(version), 'PX', px))),
      )
      await this.publish(channel, msg)
      return
    }
    await this.#run(() =>
      this.#client.strataVersionsPub(ks.length, ...ks, version, px, channel, msg),
    )
  }

  async getVersions(keys: string[]): Promise<number[]> {
    if (keys.length === 0) return []
    const ks = keys.map((k) => this.#k(k))
    const raw = this.isCluster
      ? await Promise.all(ks.map((k) => this.#run(() => this.#client.get(k))))
      : await this.#run(() => this.#client.mget(ks))
    return raw.map((v) => (v === null ? 0 : Number(v)))
  }

  async publish(channel: string, msg: string): Promise<void> {
    await this.#run(() => this.#client.publish(channel, msg))
  }

  async unlock(key: string, token: string): Promise<void> {
    const lockKey = lockKeyFor(this.#k(key))
    await this.#run(() => this.#client.strataUnlock(lockKey, token))
  }

  async extendLock(key: string, token: string, px: number): Promise<void> {
    const lockKey = lockKeyFor(this.#k(key))
    await this.#run(() => this.#client.strataExtend(lockKey, token, Math.max(1, Math.ceil(px))))
  }

  async scan(match: string, onKeys: (keys: string[]) => Promise<void>): Promise<void> {
    const nodes = this.isCluster
      ? (this.#client as Cluster).nodes('master')
      : [this.#client as Redis]
    const full = escapeGlob(this.keyPrefix) + match
    const n = this.keyPrefix.length
    for (const node of nodes) {
      let cursor = '0'
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', full, 'COUNT', 500)
        cursor = next
        if (keys.length) await onKeys(keys.map((k) => k.slice(n)))
      } while (cursor !== '0')
    }
  }

  async subscribe(
    channel: string,
    onMessage: (msg: string) => void,
    onState: (up: boolean) => void,
  ): Promise<void> {
    // A subscriber connection waits for messages indefinitely, so no commandTimeout; we
    // re-subscribe ourselves to learn exactly when the subscription is live again.
    const sub = this.isCluster
      ? (this.#client as Cluster).duplicate(undefined, {
          redisOptions: { maxRetriesPerRequest: 0, autoResubscribe: false },
        })
      : (this.#client as Redis).duplicate({ commandTimeout: undefined, autoResubscribe: false })
    this.#sub = sub
    sub.on('error', (err: Error) => this.#logger.debug({ err }, 'strata cache: bus error'))
    sub.on('message', (ch: string, msg: string) => {
      if (ch === channel) onMessage(msg)
    })
    let up = false
    const resubscribe = (): void => {
      sub.subscribe(channel).then(
        () => {
          if (!up) {
            up = true
            onState(true)
          }
        },
        () => {},
      )
    }
    sub.on('close', () => {
      if (up) {
        up = false
        onState(false)
      }
    })
    sub.on('ready', () => {
      if (!up) resubscribe()
    })
    await withTimeout(sub.subscribe(channel), Math.max(1000, this.#commandTimeout * 4)).then(
      () => {
        if (!up) {
          up = true
          onState(true)
        }
      },
      (err: unknown) => this.#logger.warn({ err }, 'strata cache: bus subscribe failed'),
    )
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#sub?.disconnect()
    if (this.#owned) this.#client.disconnect()
  }
}

/** Lock keys are `{<key>}:lock`, which hash to the data key's slot when it has no braces. */
export function lockKeyFor(key: string): string {
  return `{${key}}:lock`
}

function sameSlot(key: string, lockKey: string): boolean {
  return lockKey === lockKeyFor(key) && !key.includes('{') && !key.includes('}')
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`strata cache: timed out after ${ms}ms`)), ms)
    p.then(
      (v) => {
        clearTimeout(t)
        resolve(v)
      },
      (e: unknown) => {
        clearTimeout(t)
        reject(e as Error)
      },
    )
  })
}

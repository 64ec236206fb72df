import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { Logger } from '@strata/core'
import type { Cluster, Redis } from 'ioredis'

export interface InstanceRegistryOptions {
  /** Key prefix: keys are `<prefix>{instances}` (index) and `<prefix>{instances}:<id>`. @defaultValue 'strata:' */
  prefix?: string
  /** How often this instance publishes its snapshot (ms). @defaultValue 5000 */
  publishEveryMs?: number
  /** How long a published snapshot lives (ms): an instance that stopped publishing drops out. @defaultValue 15000 */
  ttlMs?: number
}

/** One live instance as listed by the registry. */
export interface InstanceEntry {
  id: string
  hostname: string
  pid: number
  startedAt: string
  publishedAt: string
  /** Milliseconds since it published (by this instance's clock). */
  ageMs: number
  self: boolean
  snapshot: Record<string, unknown>
}

/** `hostname:pid:random`: unique even for two processes reusing a pid in two containers. */
export function newInstanceId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
}

/**
 * Where the instances of a cluster tell each other they are alive: each publishes its
 * snapshot to Redis with a TTL on a timer, and `list()` reads the ones not expired. The index
 * (a sorted set scored by expiry) and the entries share a hash tag, so one Cluster slot holds
 * them and MGET works there too.
 */
export class InstanceRegistry {
  readonly id: string
  readonly startedAt = new Date().toISOString()
  readonly #redis: Redis | Cluster
  readonly #index: string
  readonly #publishEveryMs: number
  readonly #ttlMs: number
  readonly #snapshot: () => Promise<Record<string, unknown>>
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  #publishing: Promise<void> | undefined
  #closed = false

  constructor(
    redis: Redis | Cluster,
    options: InstanceRegistryOptions & {
      id: string
      snapshot: () => Promise<Record<string, unknown>>
      logger: Logger
    },
  ) {
    this.#redis = redis
    this.id = options.id
    this.#index = `${options.prefix ?? 'strata:'}{instances}`
    this.#publishEveryMs = options.publishEveryMs ?? 5000
    this.#ttlMs = options.ttlMs ?? 15_000
    this.#snapshot = options.snapshot
    this.#log = options.logger
  }

  #key(id: string): string {
    return `${this.#index}:${id}`
  }

  /** Publishes now, then every `publishEveryMs`. */
  start(): void {
    if (this.#timer || this.#closed) return
    void this.publish()
    this.#timer = setInterval(() => void this.publish(), this.#publishEveryMs)
    this.#timer.unref()
  }

  /** Publishes this instance's snapshot once; failures are logged, never thrown. */
  publish(): Promise<void> {
    this.#publishing ??= this.#publish().finally(() => (this.#publishing = undefined))
    return this.#publishing
  }

  async #publish(): Promise<void> {
    try {
      const snapshot = await this.#snapshot()
      if (this.#closed) return
      const now = Date.now()
      const entry = {
        id: this.id,
        hostname: hostname(),
        pid: process.pid,
        startedAt: this.startedAt,
        publishedAt: new Date(now).toISOString(),
        snapshot,
      }
      await this.#redis
        .multi()
        .set(this.#key(this.id), JSON.stringify(entry), 'PX', this.#ttlMs)
        .zadd(this.#index, now + this.#ttlMs, this.id)
        .zremrangebyscore(this.#index, '-inf', now)
        .exec()
    } catch (err) {
      this.#log.warn({ err }, 'could not publish this instance to Redis')
    }
  }

  /** The instances whose snapshot has not expired, this one first, then by id. */
  async list(): Promise<InstanceEntry[]> {
    const now = Date.now()
    const ids = await this.#redis.zrangebyscore(this.#index, now, '+inf')
    if (ids.length === 0) return []
    const raw = await this.#redis.mget(...ids.map((id) => this.#key(id)))
    const out: InstanceEntry[] = []
    for (const r of raw) {
      if (!r) continue // expired between the two reads
      const e = JSON.parse(r) as Omit<InstanceEntry, 'ageMs' | 'self'>
      out.push({
        ...e,
        ageMs: Math.max(0, now - Date.parse(e.publishedAt)),
        self: e.id === this.id,
      })
    }
    return out.sort((a, b) => Number(b.self) - Number(a.self) || a.id.localeCompare(b.id))
  }

  /** Stops publishing and removes this instance at once (not after its TTL). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#publishing
    await this.#redis
      .multi()
      .del(this.#key(this.id))
      .zrem(this.#index, this.id)
      .exec()
      .catch((err: unknown) => this.#log.warn({ err }, 'could not remove this instance from Redis'))
  }
}

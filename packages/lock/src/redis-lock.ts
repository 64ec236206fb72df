import { Cluster, Redis } from 'ioredis'
import type { Logger, RedisTarget } from '@strata/core'
import { parseRedisTarget, silentLogger } from '@strata/core'
import { BaseLockProvider } from './base-lock-provider.js'
import type { AttemptResult } from './base-lock-provider.js'
import { lockErrors } from './errors.js'
import type { LockBackend, LockHandle } from './lock-handle.js'
import type { LockProvider } from './lock-provider.js'
import { lockDefaults, resolveRetry } from './options.js'
import type { RetryOptions } from './options.js'
import { scripts } from './scripts/index.js'

export interface RedisLockOptions {
  /** A client the application owns (single node or Cluster); not closed by `close()`. */
  redis?: Redis | Cluster
  /**
   * Used when `redis` is absent: `redis://…`, or `redis+cluster://h1:p1,h2:p2` / a comma list
   * for Redis Cluster. The client is created and closed by the provider.
   */
  url?: string
  /**
   * Prefix of every key. The lock key is `<prefix>{<key>}` and the fencing counter
   * `<prefix>{<key>}:fence`: the hash tag keeps both in one Cluster slot.
   * @defaultValue 'strata:lock:'
   */
  prefix?: string
  /** Default waiting behaviour of `acquire`; see RetryOptions for defaults. */
  retry?: RetryOptions
  /**
   * Command timeout of a client created from `url` (a hung Redis must fail, not hang forever).
   * @defaultValue 2000
   */
  commandTimeoutMs?: number
  logger?: Logger
}

/**
 * Creates a Redis lock provider: SET NX PX + INCR fencing counter in one Lua script; owner-checked
 * Lua release/extend.
 *
 * Waiters retry with jittered exponential back-off capped by the holder's PTTL rather than being
 * woken by pub/sub: an expired holder (the case that matters: a crashed process) publishes
 * nothing, so polling would be needed anyway, and pub/sub would cost every provider a dedicated
 * subscriber connection (sharded SSUBSCRIBE on Cluster). These locks guard coarse work; the
 * cache's hot miss path has its own pub/sub wake-up.
 */
export function createRedisLock(options: RedisLockOptions): LockProvider {
  return new RedisLockProvider(options)
}

export class RedisLockProvider extends BaseLockProvider {
  readonly kind = 'redis' as const
  readonly #client: Redis | Cluster
  readonly #owned: boolean
  readonly #prefix: string
  protected readonly backend: LockBackend

  constructor(options: RedisLockOptions) {
    super(options.logger ?? silentLogger, resolveRetry(lockDefaults.retry, options.retry))
    this.#prefix = options.prefix ?? lockDefaults.prefix
    if (options.redis) {
      this.#client = options.redis
      this.#owned = false
    } else if (options.url) {
      this.#client = clientFromUrl(options.url, options.commandTimeoutMs ?? 2000)
      this.#owned = true
      // An owned client reports errors through rejected commands; keep 'error' from crashing.
      this.#client.on('error', (err: unknown) => this.logger.warn({ err }, 'lock: redis error'))
    } else {
      throw lockErrors.create('STRATA_LOCK_INVALID_OPTIONS', {
        message: 'createRedisLock needs `redis` (a client) or `url`',
      })
    }
    const client = this.#client
    const lockKey = (h: LockHandle) => this.lockKey(h.key)
    this.backend = {
      extend: async (h, ttlMs) =>
        (await scripts.extend.run(client, [lockKey(h)], [h.owner, ttlMs])) === 1,
      release: async (h) => (await scripts.release.run(client, [lockKey(h)], [h.owner])) === 1,
      // Our TTL view is conservative; delete the key if it somehow still carries our token.
      lost: async (h) => {
        await scripts.release.run(client, [lockKey(h)], [h.owner])
      },
    }
  }

  /** The Redis key holding `key`'s owner token. */
  lockKey(key: string): string {
    return `${this.#prefix}{${key}}`
  }

  /** The Redis key holding `key`'s fencing counter. */
  fenceKey(key: string): string {
    return `${this.#prefix}{${key}}:fence`
  }

  protected async attempt(key: string, owner: string, ttlMs: number): Promise<AttemptResult> {
    const reply = (await scripts.acquire.run(
      this.#client,
      [this.lockKey(key), this.fenceKey(key)],
      [owner, ttlMs],
    )) as [number, number]
    if (reply[0] === 1) return { acquired: true, fence: Number(reply[1]) }
    return reply[1] > 0 ? { acquired: false, retryAfterMs: reply[1] } : { acquired: false }
  }

  protected async closeBackend(): Promise<void> {
    if (!this.#owned) return
    await this.#client.quit().catch(() => this.#client.disconnect())
  }
}

function clientFromUrl(url: string, commandTimeout: number): Redis | Cluster {
  let target: RedisTarget
  try {
    // The same parser as REDIS_URL and the cache, so every package accepts the same forms.
    target = parseRedisTarget(url)
  } catch (cause) {
    throw lockErrors.create('STRATA_LOCK_INVALID_OPTIONS', {
      message: `createRedisLock url: ${(cause as Error).message}`,
      cause,
    })
  }
  const redisOptions = { commandTimeout, maxRetriesPerRequest: 2 }
  if (!target.cluster) return new Redis(target.url, redisOptions)
  return new Cluster(target.nodes, {
    redisOptions: { ...redisOptions, password: target.password, username: target.username },
  })
}

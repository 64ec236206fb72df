import type { Duration, Logger } from '@strata/core'
import { parseDuration, silentLogger } from '@strata/core'
import { BaseLockProvider } from './base-lock-provider.js'
import type { AttemptResult } from './base-lock-provider.js'
import { lockErrors } from './errors.js'
import type { LockBackend, LockHandle } from './lock-handle.js'
import type { LockProvider } from './lock-provider.js'
import { lockDefaults, resolveRetry } from './options.js'
import type { RetryOptions } from './options.js'

/** The subset of a pg `PoolClient` this package needs (so it never depends on pg or @strata/pg). */
export interface PgLockClient {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>
  /** Returns the client to its pool; a truthy argument destroys it instead. */
  release(err?: Error | boolean): void
  on?(event: 'error', listener: (err: Error) => void): unknown
  removeListener?(event: 'error', listener: (err: Error) => void): unknown
}

/** The subset of a pg `Pool` this package needs. Must hand out session (not PgBouncer transaction-mode) connections. */
export interface PgLockPool {
  connect(): Promise<PgLockClient>
}

export interface PgLockOptions {
  /** A pool of direct connections: session advisory locks do not survive PgBouncer transaction mode. */
  pool: PgLockPool
  /**
   * Namespace mixed into the advisory-lock hash and the fence table key.
   * @defaultValue 'strata:lock:'
   */
  prefix?: string
  /**
   * Table holding fencing counters; created on first use.
   * @defaultValue 'strata_lock_fences'
   */
  fenceTable?: string
  /**
   * The holder's session gets `idle_session_timeout` = remaining TTL + this margin, so if the
   * process freezes (its local timer cannot run) the server ends the session and frees the lock.
   * @defaultValue '2s'
   */
  sessionTimeoutMargin?: Duration
  retry?: RetryOptions
  logger?: Logger
}

/**
 * Creates a Postgres lock provider for deployments without Redis. Each held lock keeps one pool
 * client (session advisory lock on `hashtextextended(prefix || key, 0)`) for its lifetime;
 * a local timer releases it when the TTL passes, and `idle_session_timeout` (PG ≥ 14) makes the
 * server end the session if this process freezes, so a stuck holder cannot block forever.
 * Fencing tokens come from an upsert-increment on `strata_lock_fences`, done while holding the
 * advisory lock, so they strictly increase per key.
 */
export function createPgLock(options: PgLockOptions): LockProvider {
  return new PgLockProvider(options)
}

interface Held {
  client: PgLockClient
  onError: (err: Error) => void
}

export class PgLockProvider extends BaseLockProvider {
  readonly kind = 'postgres' as const
  readonly #pool: PgLockPool
  readonly #prefix: string
  readonly #table: string
  readonly #held = new Map<string, Held>()
  #schema: Promise<void> | undefined
  #sessionTimeout = true
  readonly #marginMs: number
  protected readonly backend: LockBackend

  constructor(options: PgLockOptions) {
    super(options.logger ?? silentLogger, resolveRetry(lockDefaults.retry, options.retry))
    if (!options?.pool || typeof options.pool.connect !== 'function')
      throw lockErrors.create('STRATA_LOCK_INVALID_OPTIONS', {
        message: 'createPgLock needs `pool` (an object with connect(), e.g. a pg Pool)',
      })
    this.#pool = options.pool
    this.#prefix = options.prefix ?? lockDefaults.prefix
    this.#table = options.fenceTable ?? 'strata_lock_fences'
    this.#marginMs =
      options.sessionTimeoutMargin === undefined
        ? lockDefaults.pgSessionMarginMs
        : parseDuration(options.sessionTimeoutMargin, 'sessionTimeoutMargin')
    if (!/^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/.test(this.#table))
      throw lockErrors.create('STRATA_LOCK_INVALID_OPTIONS', {
        message: `fenceTable must be a plain lower-case identifier, got ${JSON.stringify(this.#table)}`,
      })
    this.backend = {
      extend: (h, ttlMs) => this.#extend(h, ttlMs),
      release: (h) => this.#release(h),
      lost: async (h) => {
        await this.#release(h)
      },
    }
  }

  protected async attempt(key: string, owner: string, ttlMs: number): Promise<AttemptResult> {
    await (this.#schema ??= this.#ensureSchema().catch((err: unknown) => {
      this.#schema = undefined
      throw err
    }))
    const name = this.#prefix + key
    const client = await this.#pool.connect()
    const onError = (err: Error) => this.logger.warn({ err, key }, 'lock: postgres client error')
    client.on?.('error', onError)
    try {
      const { rows } = await client.query(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok',
        [name],
      )
      if (rows[0]?.ok !== true) {
        client.removeListener?.('error', onError)
        client.release()
        return { acquired: false }
      }
      const fence = await client.query(
        `INSERT INTO ${this.#table} AS f (key, token) VALUES ($1, 1)
         ON CONFLICT (key) DO UPDATE SET token = f.token + 1 RETURNING token`,
        [name],
      )
      await this.#setSessionTimeout(client, ttlMs)
      this.#held.set(owner, { client, onError })
      return { acquired: true, fence: Number(fence.rows[0]!.token) }
    } catch (err) {
      // Destroying the client ends the session, which also drops a lock taken just before.
      client.removeListener?.('error', onError)
      client.release(err as Error)
      throw err
    }
  }

  async #extend(h: LockHandle, ttlMs: number): Promise<boolean> {
    const held = this.#held.get(h.owner)
    if (!held) return false
    // A live session still holds its session lock; this round trip proves liveness and moves the
    // server-side backstop.
    await this.#setSessionTimeout(held.client, ttlMs)
    return true
  }

  async #release(h: LockHandle): Promise<boolean> {
    const held = this.#held.get(h.owner)
    if (!held) return false
    this.#held.delete(h.owner)
    const { client, onError } = held
    try {
      const { rows } = await client.query(
        'SELECT pg_advisory_unlock(hashtextextended($1, 0)) AS ok',
        [this.#prefix + h.key],
      )
      if (this.#sessionTimeout) await client.query('RESET idle_session_timeout')
      client.removeListener?.('error', onError)
      client.release()
      return rows[0]?.ok === true
    } catch (err) {
      client.removeListener?.('error', onError)
      client.release(err as Error)
      throw err
    }
  }

  async #setSessionTimeout(client: PgLockClient, ttlMs: number): Promise<void> {
    if (!this.#sessionTimeout) {
      await client.query('SELECT 1')
      return
    }
    try {
      await client.query("SELECT set_config('idle_session_timeout', $1, false)", [
        String(ttlMs + this.#marginMs),
      ])
    } catch (err) {
      // 42704: unrecognized parameter (PostgreSQL < 14): keep working with the local timer only.
      if ((err as { code?: string }).code !== '42704') throw err
      this.#sessionTimeout = false
    }
  }

  async #ensureSchema(): Promise<void> {
    const client = await this.#pool.connect()
    try {
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.#table} (key text PRIMARY KEY, token bigint NOT NULL)`,
      )
      client.release()
    } catch (err) {
      client.release()
      // Two processes creating the table at once: one loses with a duplicate; the table exists.
      const code = (err as { code?: string }).code
      if (code !== '23505' && code !== '42P07') throw err
    }
  }

  protected async closeBackend(): Promise<void> {
    // The pool belongs to the caller; held locks were released by BaseLockProvider.close().
  }
}

import type { Duration, Logger } from '@strata/core'
import { isStrataError } from '@strata/core'
import { lockErrors } from './errors.js'
import type { Lock } from './lock-provider.js'
import { parseTtl } from './options.js'

/** What a backend does for a handle; each returns false when the owner no longer holds the key. */
export interface LockBackend {
  extend(lock: LockHandle, ttlMs: number): Promise<boolean>
  release(lock: LockHandle): Promise<boolean>
  /** Called once when the lock is lost locally (TTL passed): free what the lock still holds. */
  lost(lock: LockHandle): Promise<void>
}

type State = 'held' | 'released' | 'lost'

/**
 * One held lock. Expiry is tracked locally with a timer started from the moment the acquire
 * request was sent, so the local view expires no later than the backend's (conservative).
 */
export class LockHandle implements Lock {
  readonly key: string
  readonly owner: string
  readonly fence: number
  #ttlMs: number
  #expiresAt: number
  #timer: NodeJS.Timeout | undefined
  #state: State = 'held'
  #controller = new AbortController()
  #backend: LockBackend
  #logger: Logger
  #onSettle: (lock: LockHandle) => void

  constructor(init: {
    key: string
    owner: string
    fence: number
    ttlMs: number
    startedAt: number
    backend: LockBackend
    logger: Logger
    onSettle: (lock: LockHandle) => void
  }) {
    this.key = init.key
    this.owner = init.owner
    this.fence = init.fence
    this.#ttlMs = init.ttlMs
    this.#backend = init.backend
    this.#logger = init.logger
    this.#onSettle = init.onSettle
    this.#expiresAt = init.startedAt + init.ttlMs
    this.#schedule()
  }

  get expiresAt(): number {
    return this.#expiresAt
  }
  get held(): boolean {
    return this.#state === 'held'
  }
  get signal(): AbortSignal {
    return this.#controller.signal
  }

  async extend(ttl?: Duration): Promise<void> {
    const ttlMs = ttl === undefined ? this.#ttlMs : parseTtl(ttl)
    this.#assertHeld()
    const startedAt = Date.now()
    let ok: boolean
    try {
      ok = await this.#backend.extend(this, ttlMs)
    } catch (cause) {
      throw wrapBackend(cause, this.key)
    }
    if (!ok) {
      this.lose('extend found the lock no longer owned')
      throw notHeld(this.key)
    }
    this.#assertHeld()
    this.#ttlMs = ttlMs
    this.#expiresAt = startedAt + ttlMs
    this.#schedule()
  }

  async release(): Promise<void> {
    if (this.#state === 'released') return
    this.#assertHeld()
    this.#state = 'released'
    this.#clear()
    this.#onSettle(this)
    let ok: boolean
    try {
      ok = await this.#backend.release(this)
    } catch (cause) {
      throw wrapBackend(cause, this.key)
    }
    if (!ok) throw notHeld(this.key)
  }

  /** Marks the lock lost, aborts its signal and lets the backend free what it holds. */
  lose(why: string): void {
    if (this.#state !== 'held') return
    this.#state = 'lost'
    this.#clear()
    this.#onSettle(this)
    this.#controller.abort(
      lockErrors.create('STRATA_LOCK_LOST', {
        message: `Lock ${JSON.stringify(this.key)} lost: ${why}`,
        details: { key: this.key, fence: this.fence },
      }),
    )
    this.#backend.lost(this).catch((err: unknown) => {
      this.#logger.warn({ err, key: this.key }, 'lock: cleanup after loss failed')
    })
  }

  /** Stops the expiry timer without touching the backend (provider close). */
  detach(): void {
    this.#clear()
  }

  #assertHeld(): void {
    if (this.#state !== 'held') throw notHeld(this.key, this.#state)
  }

  #schedule(): void {
    this.#clear()
    const delay = Math.max(0, this.#expiresAt - Date.now())
    this.#timer = setTimeout(() => this.lose('TTL expired'), delay)
    // A held lock must not keep the process alive on its own.
    this.#timer.unref()
  }

  #clear(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}

function notHeld(key: string, state?: State) {
  return lockErrors.create('STRATA_LOCK_NOT_HELD', {
    message: `Lock ${JSON.stringify(key)} is not held by this owner${state ? ` (${state})` : ''}`,
    details: { key, state },
  })
}

export function wrapBackend(cause: unknown, key?: string) {
  if (isStrataError(cause)) return cause
  return lockErrors.create('STRATA_LOCK_BACKEND', {
    message: `Lock backend failed: ${(cause as Error)?.message ?? String(cause)}`,
    details: key === undefined ? undefined : { key },
    cause,
  })
}

import type { BreakerState } from './l2/circuit-breaker.js'

/** Events a cache emits. Keys are full keys (namespace prefix included). */
export interface CacheEventMap {
  'cache:hit': { key: string; tier: 'l1' | 'l2'; stale: boolean }
  'cache:miss': { key: string }
  'cache:set': { key: string }
  'cache:delete': { keys: string[] }
  'cache:clear': { prefix: string }
  'cache:tag-invalidated': { tags: string[] }
  'cache:error': { op: string; error: unknown }
  'cache:breaker': { state: BreakerState }
  'cache:bus': { connected: boolean }
  /** A peer's change was applied to this instance's L1 (emitted after the eviction). */
  'cache:invalidated': {
    kind: 'set' | 'delete' | 'tag' | 'clear' | 'pattern'
    keys?: string[]
    tags?: string[]
    prefix?: string
    origin: string
  }
  'cache:factory-error': { key: string; error: unknown }
  'cache:stale-served': { key: string; reason: 'swr' | 'soft-timeout' | 'factory-error' }
  'cache:hit-rate-low': { hitRate: number; threshold: number; requests: number }
  'cache:warm-progress': { done: number; failed: number; total: number }
}

export type CacheEventName = keyof CacheEventMap
export type CacheListener<E extends CacheEventName> = (data: CacheEventMap[E]) => void

/**
 * Minimal typed emitter. Not node:events because the hot path asks "is anyone listening?"
 * before building a payload, and a listener that throws must never break a cache call.
 */
export class CacheEmitter {
  readonly #listeners = new Map<CacheEventName, CacheListener<never>[]>()
  readonly #onListenerError: (err: unknown) => void

  constructor(onListenerError: (err: unknown) => void) {
    this.#onListenerError = onListenerError
  }

  on<E extends CacheEventName>(event: E, fn: CacheListener<E>): void {
    const list = this.#listeners.get(event) ?? []
    this.#listeners.set(event, [...list, fn as CacheListener<never>])
  }

  off<E extends CacheEventName>(event: E, fn: CacheListener<E>): void {
    const list = this.#listeners.get(event)
    if (!list) return
    const next = list.filter((l) => l !== (fn as CacheListener<never>))
    if (next.length) this.#listeners.set(event, next)
    else this.#listeners.delete(event)
  }

  has(event: CacheEventName): boolean {
    return this.#listeners.has(event)
  }

  emit<E extends CacheEventName>(event: E, data: CacheEventMap[E]): void {
    const list = this.#listeners.get(event)
    if (!list) return
    for (const fn of list) {
      try {
        ;(fn as CacheListener<E>)(data)
      } catch (err) {
        this.#onListenerError(err)
      }
    }
  }
}

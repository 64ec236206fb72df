// Fault injection for the cache's L2: wraps a real driver and fails, delays or drops its calls
// on demand, the way bentocache's ChaosCache wraps a store. Also a spy: it counts calls per
// method and how many are still in flight.
import type { L2Driver, LockResult } from '@strata/cache'

/** The driver calls that reach Redis (subscribe, waitReady, ready and close pass through). */
export type ChaosMethod =
  | 'get'
  | 'mget'
  | 'setAndPublish'
  | 'getOrLock'
  | 'setManyAndPublish'
  | 'deleteAndPublish'
  | 'setVersionsAndPublish'
  | 'getVersions'
  | 'publish'
  | 'unlock'
  | 'extendLock'
  | 'scan'

/** One method, several, or '*' for all of them. */
export type ChaosTarget = ChaosMethod | ChaosMethod[] | '*'

export interface FaultOptions {
  /** Disturb this many matching calls, then stop; without it, until clear(). */
  times?: number
}

type Fault =
  { kind: 'fail'; error: Error | undefined } | { kind: 'delay'; ms: number } | { kind: 'drop' }

interface Rule {
  methods: ReadonlySet<ChaosMethod> | '*'
  fault: Fault
  left: number
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * An L2Driver around a real one. Faults are rules matched in the order they were added:
 * - `fail`: the call rejects without reaching Redis (as a refused or timed-out command would);
 * - `delay`: the call reaches Redis `ms` later;
 * - `drop`: the call is lost on the way; it resolves as if Redis had nothing to say (null, no
 *   values, 0 deleted, tag version 0, lock busy) and writes and messages never happen.
 */
export class ChaosDriver implements L2Driver {
  readonly inner: L2Driver
  readonly keyPrefix: string
  readonly isCluster: boolean
  #rules: Rule[] = []
  readonly #calls = new Map<ChaosMethod, number>()
  readonly #pending = new Map<ChaosMethod, number>()

  constructor(inner: L2Driver) {
    this.inner = inner
    this.keyPrefix = inner.keyPrefix
    this.isCluster = inner.isCluster
  }

  /** Matching calls reject with `error` (default: `chaos: <method> failed`). */
  fail(target: ChaosTarget, opts: FaultOptions & { error?: Error } = {}): this {
    return this.#add(target, { kind: 'fail', error: opts.error }, opts)
  }

  /** Matching calls reach the real driver `ms` later. */
  delay(target: ChaosTarget, ms: number, opts: FaultOptions = {}): this {
    return this.#add(target, { kind: 'delay', ms }, opts)
  }

  /** Matching calls never reach Redis and resolve with an empty answer. */
  drop(target: ChaosTarget, opts: FaultOptions = {}): this {
    return this.#add(target, { kind: 'drop' }, opts)
  }

  /** Removes the rules naming any of these methods (all rules without an argument). */
  clear(target?: ChaosTarget): this {
    if (target === undefined || target === '*') {
      this.#rules = []
      return this
    }
    const names = typeof target === 'string' ? [target] : target
    this.#rules = this.#rules.filter(
      (r) => r.methods !== '*' && !names.some((m) => (r.methods as Set<ChaosMethod>).has(m)),
    )
    return this
  }

  /** Calls the cache made (disturbed or not), for one method or all. */
  calls(method?: ChaosMethod): number {
    return method === undefined ? sum(this.#calls) : (this.#calls.get(method) ?? 0)
  }

  /** Calls not settled yet (delayed, or waiting on Redis), for one method or all. */
  pending(method?: ChaosMethod): number {
    return method === undefined ? sum(this.#pending) : (this.#pending.get(method) ?? 0)
  }

  #add(target: ChaosTarget, fault: Fault, opts: FaultOptions): this {
    const methods = target === '*' ? '*' : new Set(typeof target === 'string' ? [target] : target)
    this.#rules.push({ methods, fault, left: opts.times ?? Infinity })
    return this
  }

  #take(method: ChaosMethod): Fault | undefined {
    const i = this.#rules.findIndex((r) => r.methods === '*' || r.methods.has(method))
    if (i === -1) return undefined
    const rule = this.#rules[i]!
    if (--rule.left <= 0) this.#rules.splice(i, 1)
    return rule.fault
  }

  #call<T>(method: ChaosMethod, forward: () => Promise<T>, dropped: T): Promise<T> {
    this.#calls.set(method, this.calls(method) + 1)
    const fault = this.#take(method)
    if (fault?.kind === 'fail')
      return Promise.reject(fault.error ?? new Error(`chaos: ${method} failed`))
    if (fault?.kind === 'drop') return Promise.resolve(dropped)
    this.#pending.set(method, this.pending(method) + 1)
    const settled = (): void => {
      this.#pending.set(method, this.pending(method) - 1)
    }
    const p = fault?.kind === 'delay' ? sleep(fault.ms).then(forward) : forward()
    return p.finally(settled)
  }

  ready(): boolean {
    return this.inner.ready()
  }

  waitReady(ms: number): Promise<void> {
    return this.inner.waitReady(ms)
  }

  get(key: string): Promise<Buffer | null> {
    return this.#call('get', () => this.inner.get(key), null)
  }

  mget(keys: string[]): Promise<(Buffer | null)[]> {
    return this.#call(
      'mget',
      () => this.inner.mget(keys),
      keys.map(() => null),
    )
  }

  setAndPublish(
    key: string,
    value: Buffer,
    px: number,
    channel: string,
    msg: string,
    lockToken?: string,
  ): Promise<void> {
    return this.#call(
      'setAndPublish',
      () => this.inner.setAndPublish(key, value, px, channel, msg, lockToken),
      undefined,
    )
  }

  getOrLock(
    key: string,
    token: string,
    px: number,
    knownVersion: Buffer | undefined,
  ): Promise<LockResult> {
    return this.#call('getOrLock', () => this.inner.getOrLock(key, token, px, knownVersion), {
      kind: 'busy',
    })
  }

  setManyAndPublish(
    items: { key: string; value: Buffer; px: number }[],
    channel: string,
    msg: string,
  ): Promise<void> {
    return this.#call(
      'setManyAndPublish',
      () => this.inner.setManyAndPublish(items, channel, msg),
      undefined,
    )
  }

  deleteAndPublish(keys: string[], channel: string, msg: string): Promise<number> {
    return this.#call('deleteAndPublish', () => this.inner.deleteAndPublish(keys, channel, msg), 0)
  }

  setVersionsAndPublish(
    keys: string[],
    version: number,
    px: number,
    channel: string,
    msg: string,
  ): Promise<void> {
    return this.#call(
      'setVersionsAndPublish',
      () => this.inner.setVersionsAndPublish(keys, version, px, channel, msg),
      undefined,
    )
  }

  getVersions(keys: string[]): Promise<number[]> {
    return this.#call(
      'getVersions',
      () => this.inner.getVersions(keys),
      keys.map(() => 0),
    )
  }

  publish(channel: string, msg: string): Promise<void> {
    return this.#call('publish', () => this.inner.publish(channel, msg), undefined)
  }

  unlock(key: string, token: string): Promise<void> {
    return this.#call('unlock', () => this.inner.unlock(key, token), undefined)
  }

  extendLock(key: string, token: string, px: number): Promise<void> {
    return this.#call('extendLock', () => this.inner.extendLock(key, token, px), undefined)
  }

  scan(match: string, onKeys: (keys: string[]) => Promise<void>): Promise<void> {
    return this.#call('scan', () => this.inner.scan(match, onKeys), undefined)
  }

  subscribe(
    channel: string,
    onMessage: (msg: string) => void,
    onState: (up: boolean) => void,
  ): Promise<void> {
    return this.inner.subscribe(channel, onMessage, onState)
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}

function sum(m: Map<ChaosMethod, number>): number {
  let n = 0
  for (const v of m.values()) n += v
  return n
}

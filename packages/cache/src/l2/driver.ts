/**
 * What the cache needs from its shared tier (L2) and bus transport. The cache talks to this
 * interface only: IoRedisDriver implements it on ioredis, and tests wrap a real driver to inject
 * faults. Keys are relative to `keyPrefix`, which the driver adds.
 */
export interface L2Driver {
  /** Prepended to every key; must be the cache's namespace followed by `:`. */
  readonly keyPrefix: string
  readonly isCluster: boolean
  /** True while the command connection is ready (cheap, no I/O). */
  ready(): boolean
  /** Resolves when the command connection is ready, or after `ms` (never rejects). */
  waitReady(ms: number): Promise<void>
  get(key: string): Promise<Buffer | null>
  mget(keys: string[]): Promise<(Buffer | null)[]>
  /**
   * Stores `value` for `px` ms and publishes `msg`, in one round trip; with a lock token, also
   * releases the key's lock when it is still ours. Peers woken by `msg` must read the new value.
   */
  setAndPublish(
    key: string,
    value: Buffer,
    px: number,
    channel: string,
    msg: string,
    lockToken?: string,
  ): Promise<void>
  /**
   * Single-flight step, one round trip: returns the stored value when it differs from
   * `knownVersion` (an entry's 8 version bytes); otherwise tries to take the key's lock for `px` ms.
   */
  getOrLock(
    key: string,
    token: string,
    px: number,
    knownVersion: Buffer | undefined,
  ): Promise<LockResult>
  /** Stores every item, then publishes `msg` once. */
  setManyAndPublish(
    items: { key: string; value: Buffer; px: number }[],
    channel: string,
    msg: string,
  ): Promise<void>
  /** Deletes the keys and publishes `msg`; returns how many existed. */
  deleteAndPublish(keys: string[], channel: string, msg: string): Promise<number>
  /** Writes tag invalidation versions and publishes `msg`. */
  setVersionsAndPublish(
    keys: string[],
    version: number,
    px: number,
    channel: string,
    msg: string,
  ): Promise<void>
  /** Tag invalidation versions (0 for a tag never invalidated). */
  getVersions(keys: string[]): Promise<number[]>
  publish(channel: string, msg: string): Promise<void>
  /** Releases the key's lock only if `token` still holds it. */
  unlock(key: string, token: string): Promise<void>
  /** Extends the key's lock only if `token` still holds it. */
  extendLock(key: string, token: string, px: number): Promise<void>
  /** Walks every key matching `match` (a glob relative to keyPrefix); onKeys gets relative keys. */
  scan(match: string, onKeys: (keys: string[]) => Promise<void>): Promise<void>
  /**
   * Subscribes on a dedicated connection. onState(false) when it drops, onState(true) once it is
   * subscribed again (messages in between are lost). Resolves once subscribed or given up on
   * (never rejects).
   */
  subscribe(
    channel: string,
    onMessage: (msg: string) => void,
    onState: (up: boolean) => void,
  ): Promise<void>
  /** Closes the connections the driver opened (never a client it was given). */
  close(): Promise<void>
}

export type LockResult = { kind: 'value'; value: Buffer } | { kind: 'acquired' } | { kind: 'busy' }

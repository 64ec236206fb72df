import type { Duration, Logger } from '@strata/core'
import { parseDuration, silentLogger } from '@strata/core'
import type { Registry } from 'prom-client'
import { cacheErrors } from './errors.js'
import type { L2Driver } from './l2/driver.js'
import type { RedisInput } from './l2/ioredis-driver.js'

export type SerializerName = 'msgpack' | 'json'
export type CompressionAlgorithm = 'deflate' | 'gzip' | 'brotli'

export interface L1Options {
  /** Maximum number of entries kept in process. @defaultValue 10000 */
  maxEntries?: number
  /** Maximum estimated bytes kept in process (serialized length when known). @defaultValue 64 MiB */
  maxBytes?: number
  /**
   * Admission policy. 'tinylfu' admits a new key only when it is estimated to be more frequent
   * than the LRU victim (W-TinyLFU-style frequency sketch). @defaultValue 'lru'
   */
  admission?: 'lru' | 'tinylfu'
}

export interface BreakerOptions {
  /** Consecutive L2 errors/timeouts that open the breaker. @defaultValue 5 */
  threshold?: number
  /** Time the breaker stays open before one probe is let through (half-open). @defaultValue '2s' */
  resetAfter?: Duration
}

interface L2CommonOptions {
  /**
   * Every Redis command rejects after this long (both clients wait forever by default); below
   * 250 ms so a first call against a hung Redis, factory included, still answers within 250 ms.
   * With `driver`, the driver's own setting applies.
   * @defaultValue '200ms'
   */
  commandTimeout?: Duration
  /**
   * Commands queued while disconnected beyond this are rejected at once (with `redis`).
   * @defaultValue 1000
   */
  maxOfflineQueue?: number
  /**
   * ioredis auto-pipelining (batches same-tick commands into one write; with `redis`).
   * @defaultValue false
   */
  autoPipelining?: boolean
  breaker?: BreakerOptions
  /** TTL of the cross-instance single-flight lock (a crashed holder blocks waiters this long). @defaultValue '10s' */
  lockTtl?: Duration
}

/** The shared tier and bus: a Redis to connect to (`redis`), or a ready-made driver (`driver`). */
export type L2Options = L2CommonOptions &
  (
    | {
        /** A URL (`redis://`, `redis+cluster://h:p,h:p` or a comma list), or an ioredis Redis/Cluster. */
        redis: RedisInput
        driver?: undefined
      }
    | {
        /**
         * A driver built by the caller (e.g. an IoRedisDriver, or a test's wrapper around one);
         * its keyPrefix must be `<namespace>:`. `close()` closes it.
         */
        driver: L2Driver
        redis?: undefined
      }
  )

export interface TimeoutOptions {
  /** With a stale value available, answer with it when the factory is slower than this. */
  soft?: Duration
  /** The factory is abandoned (STRATA_CACHE_FACTORY_TIMEOUT, or the stale value) after this. */
  hard?: Duration
}

export interface HitRateAlertOptions {
  /** Emit `cache:hit-rate-low` when the hit rate over a window falls under this fraction. */
  threshold: number
  /** @defaultValue '1m' */
  window?: Duration
  /** Windows with fewer requests are ignored. @defaultValue 100 */
  minRequests?: number
}

export interface MetricsOptions {
  /** prom-client Registry to register on; a private one is created otherwise. */
  registry?: Registry
}

/** Per-entry options accepted by getOrSet/set; they override the cache (or namespace) defaults. */
export interface EntryOptions {
  /** Time the value is fresh. @defaultValue '5m' */
  ttl?: Duration
  /** Extra time a value is kept after its TTL to be served stale. @defaultValue 0 */
  grace?: Duration
  /** Tags for deleteByTag. */
  tags?: string[]
  /** Factory timeouts. */
  timeouts?: TimeoutOptions
  /** Fraction of the TTL randomly added or removed (0-1). @defaultValue 0 */
  jitter?: number
}

export interface CacheOptions {
  /** Key prefix in Redis (`<namespace>:`) and the bus channel scope. @defaultValue 'strata' */
  namespace?: string
  l1?: L1Options
  /** Without l2 the cache is L1-only with an in-process bus. */
  l2?: L2Options
  /** Invalidation bus over Redis pub/sub (needs l2). @defaultValue true */
  bus?: boolean
  /** @defaultValue '5m' */
  ttl?: Duration
  /** @defaultValue 0 */
  grace?: Duration
  /** @defaultValue 0 */
  jitter?: number
  timeouts?: TimeoutOptions
  /**
   * L2 encoding. JSON by default: V8's JSON.parse decodes the JSON-shaped records caches mostly
   * hold about twice as fast as msgpackr, and L2 hits are decode-bound. 'msgpack' keeps Dates,
   * Maps, Sets, BigInts and Buffers.
   * @defaultValue 'json'
   */
  serializer?: SerializerName
  /**
   * Compress L2 payloads of at least thresholdBytes; `false` disables. The default is 64 KiB, not
   * 1 KB: node:zlib builds a fresh stream per sync call, which costs more than it saves on small
   * payloads over a fast link. Lower it when Redis is across a slow network or memory matters
   * more than CPU.
   * @defaultValue { thresholdBytes: 65536, algorithm: 'deflate' }
   */
  compress?: { thresholdBytes?: number; algorithm?: CompressionAlgorithm } | false
  /** Return structuredClone copies from L1 instead of the live objects. @defaultValue false */
  clone?: boolean
  /** L1 entries written while the bus is down live at most this long. @defaultValue '2s' */
  busOutageTtl?: Duration
  /** Prometheus metrics; `false` disables. @defaultValue {} (own Registry) */
  metrics?: MetricsOptions | false
  hitRateAlert?: HitRateAlertOptions
  logger?: Logger
}

export const DEFAULTS = {
  namespace: 'strata',
  maxEntries: 10_000,
  maxBytes: 64 * 1024 * 1024, // 64 MiB
  ttl: 5 * 60_000, // 5 minutes
  grace: 0,
  jitter: 0,
  serializer: 'json' as SerializerName,
  compressThreshold: 64 * 1024, // bytes
  compressAlgorithm: 'deflate' as CompressionAlgorithm,
  commandTimeout: 200, // ms
  maxOfflineQueue: 1000,
  breakerThreshold: 5,
  breakerResetAfter: 2000, // ms
  lockTtl: 10_000, // ms
  busOutageTtl: 2000, // ms
  hitRateWindow: 60_000, // ms
  hitRateMinRequests: 100,
} as const

/** Per-entry defaults a namespace view carries (resolved to ms). */
export interface ResolvedEntryDefaults {
  ttl: number
  grace: number
  jitter: number
  soft: number | undefined
  hard: number | undefined
}

export interface ResolvedOptions {
  namespace: string
  maxEntries: number
  maxBytes: number
  admission: 'lru' | 'tinylfu'
  l2: L2Options | undefined
  commandTimeout: number
  maxOfflineQueue: number
  autoPipelining: boolean
  breakerThreshold: number
  breakerResetAfter: number
  lockTtl: number
  bus: boolean
  entry: ResolvedEntryDefaults
  serializer: SerializerName
  compressThreshold: number | undefined
  compressAlgorithm: CompressionAlgorithm
  clone: boolean
  busOutageTtl: number
  metrics: MetricsOptions | false
  hitRateAlert: { threshold: number; window: number; minRequests: number } | undefined
  logger: Logger
}

function invalid(message: string, cause?: unknown): never {
  throw cacheErrors.create('STRATA_CACHE_INVALID_OPTIONS', { message, cause })
}

export function duration(value: Duration | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  try {
    return parseDuration(value, name)
  } catch (err) {
    return invalid((err as Error).message, err)
  }
}

function positiveInt(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value <= 0)
    invalid(`${name}: expected a positive integer, got ${value}`)
  return value
}

function fraction(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value < 0 || value > 1)
    invalid(`${name}: expected 0..1, got ${value}`)
  return value
}

export function resolveEntryDefaults(
  o: EntryOptions,
  base: ResolvedEntryDefaults | undefined,
): ResolvedEntryDefaults {
  return {
    ttl: duration(o.ttl, 'ttl') ?? base?.ttl ?? DEFAULTS.ttl,
    grace: duration(o.grace, 'grace') ?? base?.grace ?? DEFAULTS.grace,
    jitter: fraction(o.jitter, 'jitter', base?.jitter ?? DEFAULTS.jitter),
    soft: duration(o.timeouts?.soft, 'timeouts.soft') ?? base?.soft,
    hard: duration(o.timeouts?.hard, 'timeouts.hard') ?? base?.hard,
  }
}

function checkL2(l2: L2Options, rootPrefix: string): void {
  if ((l2.redis === undefined) === (l2.driver === undefined))
    invalid('l2: expected exactly one of `redis` (a URL or an ioredis client) and `driver`')
  if (l2.driver !== undefined && l2.driver.keyPrefix !== rootPrefix)
    invalid(
      `l2.driver: its keyPrefix is ${JSON.stringify(l2.driver.keyPrefix)}, the namespace needs ${JSON.stringify(rootPrefix)}`,
    )
}

/** Resolves and validates options once; the result is frozen. */
export function resolveOptions(o: CacheOptions = {}): Readonly<ResolvedOptions> {
  if (o.namespace !== undefined && (typeof o.namespace !== 'string' || o.namespace === ''))
    invalid('namespace: expected a non-empty string')
  if (o.serializer !== undefined && o.serializer !== 'msgpack' && o.serializer !== 'json')
    invalid(`serializer: expected 'msgpack' or 'json', got ${String(o.serializer)}`)
  if (o.l2 !== undefined) checkL2(o.l2, `${o.namespace ?? DEFAULTS.namespace}:`)
  const compress = o.compress === false ? undefined : (o.compress ?? {})
  const alert = o.hitRateAlert
  return Object.freeze({
    namespace: o.namespace ?? DEFAULTS.namespace,
    maxEntries: positiveInt(o.l1?.maxEntries, 'l1.maxEntries', DEFAULTS.maxEntries),
    maxBytes: positiveInt(o.l1?.maxBytes, 'l1.maxBytes', DEFAULTS.maxBytes),
    admission: o.l1?.admission ?? 'lru',
    l2: o.l2,
    commandTimeout: duration(o.l2?.commandTimeout, 'l2.commandTimeout') ?? DEFAULTS.commandTimeout,
    maxOfflineQueue: positiveInt(
      o.l2?.maxOfflineQueue,
      'l2.maxOfflineQueue',
      DEFAULTS.maxOfflineQueue,
    ),
    autoPipelining: o.l2?.autoPipelining ?? false,
    breakerThreshold: positiveInt(
      o.l2?.breaker?.threshold,
      'l2.breaker.threshold',
      DEFAULTS.breakerThreshold,
    ),
    breakerResetAfter:
      duration(o.l2?.breaker?.resetAfter, 'l2.breaker.resetAfter') ?? DEFAULTS.breakerResetAfter,
    lockTtl: duration(o.l2?.lockTtl, 'l2.lockTtl') ?? DEFAULTS.lockTtl,
    bus: o.bus ?? true,
    entry: resolveEntryDefaults(
      { ttl: o.ttl, grace: o.grace, jitter: o.jitter, timeouts: o.timeouts },
      undefined,
    ),
    serializer: o.serializer ?? DEFAULTS.serializer,
    compressThreshold:
      compress === undefined
        ? undefined
        : positiveInt(
            compress.thresholdBytes,
            'compress.thresholdBytes',
            DEFAULTS.compressThreshold,
          ),
    compressAlgorithm: compress?.algorithm ?? DEFAULTS.compressAlgorithm,
    clone: o.clone ?? false,
    busOutageTtl: duration(o.busOutageTtl, 'busOutageTtl') ?? DEFAULTS.busOutageTtl,
    metrics: o.metrics ?? {},
    hitRateAlert:
      alert === undefined
        ? undefined
        : {
            threshold: fraction(alert.threshold, 'hitRateAlert.threshold', 0),
            window: duration(alert.window, 'hitRateAlert.window') ?? DEFAULTS.hitRateWindow,
            minRequests: positiveInt(
              alert.minRequests,
              'hitRateAlert.minRequests',
              DEFAULTS.hitRateMinRequests,
            ),
          },
    logger: o.logger ?? silentLogger,
  })
}

export { createCache, Cache } from './cache.js'
export type { SetManyItem } from './cache.js'
export type { Factory, FactoryContext } from './cache-core.js'
export { cacheErrors } from './errors.js'
export type { CacheEventMap, CacheEventName, CacheListener } from './events.js'
export type {
  BreakerOptions,
  CacheOptions,
  CompressionAlgorithm,
  EntryOptions,
  HitRateAlertOptions,
  L1Options,
  L2Options,
  MetricsOptions,
  SerializerName,
  TimeoutOptions,
} from './options.js'
export type { RedisInput } from './redis-driver.js'
export type { BreakerState } from './breaker.js'
export type { CacheStats, TierStats } from './stats.js'
export type { WarmOptions, WarmProgress, WarmResult, WarmTask } from './warm.js'

export { createCache, Cache } from './cache.js'
export type { SetManyItem } from './cache.js'
export type { Factory, FactoryContext } from './single-flight/factory-runner.js'
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
export type { L2Driver, LockResult } from './l2/driver.js'
export { IoRedisDriver } from './l2/ioredis-driver.js'
export type { IoRedisDriverOptions, RedisInput } from './l2/ioredis-driver.js'
export type { BreakerState } from './l2/circuit-breaker.js'
export type { CacheStats, TierStats } from './stats/stats-reporter.js'
export type { WarmOptions, WarmProgress, WarmResult, WarmTask } from './warm.js'

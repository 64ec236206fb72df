import { defineErrors } from '@strata/core'

/** Every error @strata/cache throws on purpose. Redis failures are never thrown to callers. */
export const cacheErrors = defineErrors('cache', {
  STRATA_CACHE_FACTORY_TIMEOUT: {
    status: 504,
    message: 'cache factory exceeded its hard timeout',
  },
  STRATA_CACHE_FACTORY_ERROR: {
    status: 500,
    message: 'cache factory failed and no stale value was available',
  },
  STRATA_CACHE_INVALID_KEY: {
    status: 400,
    message: 'cache key must be a non-empty string',
  },
  STRATA_CACHE_INVALID_OPTIONS: {
    status: 400,
    message: 'invalid cache options',
  },
  STRATA_CACHE_SERIALIZATION_FAILED: {
    status: 500,
    message: 'value could not be serialized or deserialized',
  },
  STRATA_CACHE_CLOSED: {
    status: 503,
    message: 'cache is closed',
  },
})

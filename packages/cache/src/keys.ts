import { cacheErrors } from './errors.js'

/** Keys starting with this are the cache's own (bus channel, tag versions); callers can't use it. */
export const INTERNAL = '__strata:'

export function validateKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key === '' || key.startsWith(INTERNAL))
    throw cacheErrors.create('STRATA_CACHE_INVALID_KEY', {
      details: { key: typeof key === 'string' ? key : typeof key },
    })
}

/** The key holding `tag`'s invalidation version under a view's prefix. */
export function tagKey(prefix: string, tag: string): string {
  if (typeof tag !== 'string' || tag === '')
    throw cacheErrors.create('STRATA_CACHE_INVALID_OPTIONS', {
      message: 'tags must be non-empty strings',
    })
  return `${prefix}${INTERNAL}tag:${tag}`
}

/** The bus channel of a cache whose keys start with `rootPrefix`. */
export function busChannel(rootPrefix: string): string {
  return `${rootPrefix}${INTERNAL}bus`
}

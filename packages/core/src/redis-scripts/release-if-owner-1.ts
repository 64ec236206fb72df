import type { RedisScriptSource } from './redis-script-source.js'

/**
 * Delete a lock key only if the caller still owns it (compare-and-delete).
 * Used by @strata/lock to release locks and by @strata/cache to give back a single-flight lock.
 *
 * Input:
 *   KEYS[1] lock key
 *   ARGV[1] owner token
 *
 * Output:
 *   1  released
 *   0  not held by this owner (expired or taken over)
 */
export const releaseIfOwnerScript: RedisScriptSource = {
  numberOfKeys: 1,
  lua: `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`,
}

import type { RedisScriptSource } from './redis-script-source.js'

/**
 * Reset a lock key's TTL only if the caller still owns it (compare-and-pexpire).
 * Used by @strata/lock to extend locks and by @strata/cache to keep a single-flight lock alive.
 *
 * Input:
 *   KEYS[1] lock key
 *   ARGV[1] owner token
 *   ARGV[2] new ttl in ms
 *
 * Output:
 *   1  extended
 *   0  not held by this owner (expired or taken over)
 */
export const extendIfOwnerScript: RedisScriptSource = {
  numberOfKeys: 1,
  lua: `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
`,
}

/**
 * Reset a lock's TTL only if the caller still owns it.
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
export const extendScript = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
`

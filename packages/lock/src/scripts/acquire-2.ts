/**
 * Acquire a lock and draw its fencing token in one step.
 *
 * Input:
 *   KEYS[1] lock key                 (hash tag shared with KEYS[2] for Redis Cluster)
 *   KEYS[2] fencing counter key      (never expires: tokens must keep increasing)
 *   ARGV[1] owner token
 *   ARGV[2] ttl in ms
 *
 * Output:
 *   { 1, fence }      acquired; fence is the new counter value
 *   { 0, pttl }       held by someone else; pttl = holder's remaining ms (-1: no expiry)
 */
export const acquireScript = `
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  return { 1, redis.call("INCR", KEYS[2]) }
end
return { 0, redis.call("PTTL", KEYS[1]) }
`

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
 *
 * A missing counter (first use, or a Redis that restarted without persistence) starts from
 * Redis' clock in microseconds rather than from 0: tokens then keep increasing across the
 * restart, as long as the clock does not go back and fewer than a million locks a second were
 * taken on the key before it.
 *   { 0, pttl }       held by someone else; pttl = holder's remaining ms (-1: no expiry)
 */
export const acquireScript = `
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  if redis.call("EXISTS", KEYS[2]) == 0 then
    local t = redis.call("TIME")
    redis.call("SET", KEYS[2], string.format("%.0f", t[1] * 1000000 + t[2]))
    return { 1, tonumber(redis.call("GET", KEYS[2])) }
  end
  return { 1, redis.call("INCR", KEYS[2]) }
end
return { 0, redis.call("PTTL", KEYS[1]) }
`

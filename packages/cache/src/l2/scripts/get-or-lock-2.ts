/**
 * The single-flight step in one round trip on Redis Cluster: the stored value when it is not the
 * one the caller already has, else an attempt at the key's lock. (Single node: SET NX and GET
 * sent together as plain commands, which cost Redis less than a script.)
 *
 * Input:
 *   KEYS[1] data key
 *   KEYS[2] lock key (same slot as KEYS[1])
 *   ARGV[1] lock owner token
 *   ARGV[2] lock ttl in ms
 *   ARGV[3] version bytes the caller already has (entry bytes 3..10), or ''
 *
 * Output:
 *   { 0, value }  a value the caller has not seen
 *   { 1 }         lock acquired
 *   { 2 }         lock held by someone else
 */
export const getOrLockScript = {
  numberOfKeys: 2,
  lua: `
local v = redis.call("GET", KEYS[1])
if v and (ARGV[3] == "" or string.sub(v, 3, 10) ~= ARGV[3]) then return { 0, v } end
if redis.call("SET", KEYS[2], ARGV[1], "NX", "PX", ARGV[2]) then return { 1 } end
return { 2 }
`,
}

/**
 * Store a value and publish a bus message; with a lock key, also release the lock when the
 * caller still holds it. Used on Redis Cluster only, where the PUBLISH could otherwise reach a
 * node before the SET is applied on the key's node (single node: plain SET, then
 * unlock-publish-1 or PUBLISH on the same connection).
 *
 * Input (1 or 2 keys; the caller passes the count):
 *   KEYS[1] data key
 *   KEYS[2] lock key (optional; same slot as KEYS[1])
 *   ARGV[1] value
 *   ARGV[2] ttl in ms
 *   ARGV[3] bus channel
 *   ARGV[4] bus message
 *   ARGV[5] lock owner token (with KEYS[2])
 *
 * Output:
 *   1
 */
export const setPublishScript = {
  lua: `
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
redis.call("PUBLISH", ARGV[3], ARGV[4])
if KEYS[2] and redis.call("GET", KEYS[2]) == ARGV[5] then redis.call("DEL", KEYS[2]) end
return 1
`,
}

/**
 * Write one invalidation version to every tag key and publish a bus message (single node).
 *
 * Input (any number of keys; the caller passes the count):
 *   KEYS[1..n] tag keys
 *   ARGV[1]    version
 *   ARGV[2]    ttl in ms
 *   ARGV[3]    bus channel
 *   ARGV[4]    bus message
 *
 * Output:
 *   1
 */
export const setVersionsPublishScript = {
  lua: `
for i = 1, #KEYS do redis.call("SET", KEYS[i], ARGV[1], "PX", ARGV[2]) end
redis.call("PUBLISH", ARGV[3], ARGV[4])
return 1
`,
}

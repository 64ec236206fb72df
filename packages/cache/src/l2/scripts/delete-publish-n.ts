/**
 * Delete keys and publish a bus message (single node).
 *
 * Input (any number of keys; the caller passes the count):
 *   KEYS[1..n] keys to delete
 *   ARGV[1]    bus channel
 *   ARGV[2]    bus message
 *
 * Output:
 *   number of keys that existed
 */
export const deletePublishScript = {
  lua: `
local n = redis.call("UNLINK", unpack(KEYS))
redis.call("PUBLISH", ARGV[1], ARGV[2])
return n
`,
}

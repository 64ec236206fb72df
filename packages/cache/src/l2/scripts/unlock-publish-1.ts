/**
 * Release a lock the caller still holds and publish a bus message (single node). The value itself
 * is SET by a plain command just before, on the same connection, so it lands first: a script that
 * carried the value would cost Redis several times a plain SET.
 *
 * Input:
 *   KEYS[1] lock key
 *   ARGV[1] lock owner token
 *   ARGV[2] bus channel
 *   ARGV[3] bus message
 *
 * Output:
 *   1
 */
export const unlockPublishScript = {
  numberOfKeys: 1,
  lua: `
if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("DEL", KEYS[1]) end
redis.call("PUBLISH", ARGV[2], ARGV[3])
return 1
`,
}

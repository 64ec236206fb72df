/**
 * A Lua script as plain data, with no Redis client attached: each package runs it with its own
 * client (ioredis `defineCommand`, or EVALSHA through a small wrapper). The field names match
 * ioredis' `defineCommand` options, so a source can be passed to it as is.
 */
export interface RedisScriptSource {
  /** Lua source text. */
  readonly lua: string
  /** How many of the arguments are KEYS. */
  readonly numberOfKeys: number
}

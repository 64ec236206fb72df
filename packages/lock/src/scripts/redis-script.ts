import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import type { RedisScriptSource } from '@strata/core'

/**
 * A Lua script run with EVALSHA, falling back to EVAL (which also caches it on that node) on
 * NOSCRIPT. Hand-written instead of ioredis' defineCommand so we do not add commands to a
 * client the application owns; the key count comes from the file name, bullmq style.
 */
export class RedisScript {
  readonly name: string
  readonly numKeys: number
  readonly #lua: string
  readonly #sha: string

  constructor(name: string, numKeys: number, lua: string) {
    this.name = name
    this.numKeys = numKeys
    this.#lua = lua
    this.#sha = createHash('sha1').update(lua).digest('hex')
  }

  /** A script shared through @strata/core. */
  static from(name: string, source: RedisScriptSource): RedisScript {
    return new RedisScript(name, source.numberOfKeys, source.lua)
  }

  async run(client: Redis | Cluster, keys: string[], args: (string | number)[]): Promise<unknown> {
    if (keys.length !== this.numKeys)
      throw new Error(`script ${this.name} takes ${this.numKeys} keys, got ${keys.length}`)
    try {
      return await client.evalsha(this.#sha, this.numKeys, ...keys, ...args)
    } catch (err) {
      if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err
      return await client.eval(this.#lua, this.numKeys, ...keys, ...args)
    }
  }
}

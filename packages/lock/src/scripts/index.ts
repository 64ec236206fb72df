import { extendIfOwnerScript, releaseIfOwnerScript } from '@strata/core'
import { acquireScript } from './acquire-2.js'
import { RedisScript } from './redis-script.js'

// Scripts live in TS string constants (not .lua files) so `tsc` ships them in dist untouched.
// Release and extend are the owner-checked scripts @strata/cache runs too, so they live in core.
export const scripts = {
  acquire: new RedisScript('acquire', 2, acquireScript),
  release: RedisScript.from('release', releaseIfOwnerScript),
  extend: RedisScript.from('extend', extendIfOwnerScript),
}

/** Lua text of the owner-checked release (KEYS[1] lock key, ARGV[1] owner token). */
export const releaseScript = releaseIfOwnerScript.lua
/** Lua text of the owner-checked extend (KEYS[1] lock key, ARGV[1] owner token, ARGV[2] ttl ms). */
export const extendScript = extendIfOwnerScript.lua

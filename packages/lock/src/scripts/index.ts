import { acquireScript } from './acquire-2.js'
import { extendScript } from './extend-1.js'
import { releaseScript } from './release-1.js'
import { RedisScript } from './redis-script.js'

// Scripts live in TS string constants (not .lua files) so `tsc` ships them in dist untouched.
export const scripts = {
  acquire: new RedisScript('acquire', 2, acquireScript),
  release: new RedisScript('release', 1, releaseScript),
  extend: new RedisScript('extend', 1, extendScript),
}

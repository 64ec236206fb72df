// Lua scripts more than one package runs; a package's own scripts stay in that package.
export { releaseIfOwnerScript } from './release-if-owner-1.js'
export { extendIfOwnerScript } from './extend-if-owner-1.js'
export type { RedisScriptSource } from './redis-script-source.js'

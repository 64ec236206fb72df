export { StrataError, defineErrors, isStrataError } from './errors.js'
export type { ErrorDefinition, ErrorRegistry, StrataErrorOptions } from './errors.js'
export { parseDuration } from './duration.js'
export type { Duration } from './duration.js'
export { silentLogger } from './logger.js'
export type { Logger } from './logger.js'
export { parseRedisTarget } from './redis-url.js'
export type { RedisTarget } from './redis-url.js'
export { seededRandom } from './random.js'
export { isObject } from './is-object.js'
export { decodeKeysetCursor, encodeKeysetCursor } from './keyset-cursor.js'
export { assertPgText, findPgTextIssue, isPgText, pgTextProblem, toPgInet } from './pg-text.js'
export type { PgTextIssue } from './pg-text.js'
export type { KeysetCursor } from './keyset-cursor.js'
export {
  extendIfOwnerScript,
  releaseIfOwnerScript,
  type RedisScriptSource,
} from './redis-scripts/index.js'

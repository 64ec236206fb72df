export { inspectSql, statementName } from './inspect-sql.js'
export type { FunctionRef, SqlInspection, SqlRefusalReason } from './inspect-sql.js'
export { deniedReason } from './function-policy.js'
export {
  assertReadOnlyShape,
  beginReadOnly,
  checkReadOnlySql,
  extendedQuery,
  inspectReadOnlySql,
  READ_ONLY_DEFAULTS,
  READ_ONLY_ROLE,
  runReadOnly,
  withReadOnlyTransaction,
} from './read-only-runner.js'
export type { ReadOnlyOptions, SqlClient } from './read-only-runner.js'

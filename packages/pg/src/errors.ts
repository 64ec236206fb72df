import { defineErrors } from '@strata/core'

/** Every error @strata/pg throws on purpose. Codes are stable; docs/reference/errors.md lists them. */
export const pgErrors = defineErrors('pg', {
  STRATA_DB_INVALID_CONFIG: { status: 500, message: 'Invalid database configuration' },
  STRATA_DB_TIMEOUT: { status: 503, message: 'Database operation timed out' },
  STRATA_DB_UNAVAILABLE: { status: 503, message: 'Database is unavailable' },
  STRATA_DB_QUERY_FAILED: { status: 500, message: 'Database query failed' },
  STRATA_DB_SERIALIZATION_RETRIES_EXHAUSTED: {
    status: 503,
    message: 'Transaction kept failing with serialization failures or deadlocks',
  },
  STRATA_DB_CLOSED: { status: 503, message: 'Database handle is closed' },
  STRATA_DB_MIGRATION_FAILED: { status: 500, message: 'Migration failed' },
  STRATA_DB_MIGRATION_CHECKSUM_MISMATCH: {
    status: 500,
    message: 'An applied migration file was changed after it was applied',
  },
  STRATA_DB_EMBEDDED_START_FAILED: { status: 500, message: 'Embedded PostgreSQL failed to start' },
  STRATA_DB_EXPLAIN_REJECTED: {
    status: 400,
    message: 'This statement cannot be explained here (one read-only statement expected)',
  },
  STRATA_DB_SQL_NOT_READ_ONLY: {
    status: 400,
    message:
      'The SQL guard refused this statement (one plain SELECT without volatile or denied functions expected)',
  },
  STRATA_DB_NOT_OUR_SESSION: {
    status: 403,
    message: 'That session does not belong to this application; it was not touched',
  },
  STRATA_DB_EXTENSION_MISSING: {
    status: 503,
    message: 'A PostgreSQL extension this feature needs is not installed',
  },
})

export type PgErrorCode = keyof typeof pgErrors.definitions

/** The fields Postgres sends with an ErrorResponse (see pg's DatabaseError). */
export interface PgErrorFields {
  code?: string
  severity?: string
  detail?: string
  hint?: string
  position?: string
  schema?: string
  table?: string
  column?: string
  dataType?: string
  constraint?: string
  where?: string
  routine?: string
}

const PG_FIELDS = [
  'code',
  'severity',
  'detail',
  'hint',
  'position',
  'schema',
  'table',
  'column',
  'dataType',
  'constraint',
  'where',
  'routine',
] as const

// SQLSTATEs that say the connection or server went away (class 08, admin shutdown family).
const CONNECTION_LOST_CODES = new Set([
  '57P01', // admin_shutdown (pg_terminate_backend)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up / shutting down)
  '57P05', // idle_session_timeout
  '25P03', // idle_in_transaction_session_timeout (the server closes the session)
])
// Node socket errors meaning "no server there / connection cut".
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
])
const TRANSIENT_SERVER_CODES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '53300', // too_many_connections
  '53400', // configuration_limit_exceeded
  '55P03', // lock_not_available (lock_timeout / NOWAIT)
])

function rawCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** The error of a connection that broke (not a statement the server rejected). */
export function isConnectionError(err: unknown): boolean {
  const code = rawCode(err)
  if (code !== undefined) {
    if (code.startsWith('08') || CONNECTION_LOST_CODES.has(code) || SOCKET_CODES.has(code))
      return true
    if (code.length === 5) return false // any other SQLSTATE: the server answered
  }
  const msg = message(err)
  return (
    msg.startsWith('Connection terminated') ||
    msg === 'Query read timeout' ||
    msg.includes('Client has encountered a connection error') ||
    msg.includes('timeout exceeded when trying to connect') ||
    msg.includes('Client was closed and is not queryable')
  )
}

/**
 * True for errors worth retrying after a backoff: connection loss, admin shutdown, serialization
 * failures, deadlocks, too many connections, lock timeouts, pool acquire/connect timeouts and
 * client read timeouts. Not transient: statement_timeout (it would time out again) and data
 * errors (constraint violations, bad input). Accepts raw pg errors and wrapped StrataErrors.
 */
export function isTransientDbError(err: unknown): boolean {
  if (pgErrors.is(err)) {
    switch (err.code as PgErrorCode) {
      case 'STRATA_DB_UNAVAILABLE':
      case 'STRATA_DB_SERIALIZATION_RETRIES_EXHAUSTED':
        return true
      case 'STRATA_DB_TIMEOUT': {
        // A statement that hit statement_timeout would only time out again; the other kinds are
        // about the pool, the network or a lock holder, which a later attempt may not meet.
        const kind = (err.details as { kind?: string } | undefined)?.kind
        return kind !== 'statement'
      }
      case 'STRATA_DB_QUERY_FAILED':
        return isTransientDbError(err.cause)
      default:
        return false
    }
  }
  const code = rawCode(err)
  if (code !== undefined && TRANSIENT_SERVER_CODES.has(code)) return true
  return isConnectionError(err)
}

export type TimeoutKind = 'statement' | 'query' | 'acquire' | 'connect' | 'lock'

export interface ErrorContext {
  operation?: string
  collection?: string
  label?: string
  /** ms budgets, reported in details of timeouts. */
  statementTimeoutMs?: number
  queryTimeoutMs?: number
  acquireTimeoutMs?: number
}

/** Copies the Postgres error fields (code, detail, constraint, ...) present on `err`. */
export function pgFields(err: unknown): PgErrorFields {
  const out: PgErrorFields = {}
  if (err === null || typeof err !== 'object') return out
  for (const k of PG_FIELDS) {
    const v = (err as Record<string, unknown>)[k]
    if (typeof v === 'string') out[k] = v
  }
  return out
}

/** Classifies a timeout, or undefined when `err` is not one. */
export function timeoutKind(err: unknown): TimeoutKind | undefined {
  const code = rawCode(err)
  if (code === '57014') {
    // query_canceled: statement_timeout says so in the message; a user cancel does not.
    return /statement timeout/i.test(message(err)) ? 'statement' : undefined
  }
  if (code === '55P03' && /lock timeout/i.test(message(err))) return 'lock'
  const msg = message(err)
  if (msg === 'Query read timeout') return 'query'
  if (msg.includes('timeout exceeded when trying to connect')) return 'acquire'
  if (msg.includes('Connection terminated due to connection timeout')) return 'connect'
  return undefined
}

/**
 * Normalises anything a pg call threw into a StrataError with a stable code, keeping the original
 * as `cause` and the Postgres fields in `details`. Built where the caller awaited, so the async
 * stack trace shows the caller's frames.
 */
export function toDbError(err: unknown, ctx: ErrorContext = {}): Error {
  if (pgErrors.is(err)) return err
  const fields = pgFields(err)
  const where = {
    ...(ctx.operation ? { operation: ctx.operation } : {}),
    ...(ctx.collection ? { collection: ctx.collection } : {}),
    ...(ctx.label ? { label: ctx.label } : {}),
  }
  const kind = timeoutKind(err)
  if (kind !== undefined) {
    const budgetMs =
      kind === 'statement'
        ? ctx.statementTimeoutMs
        : kind === 'query'
          ? ctx.queryTimeoutMs
          : kind === 'acquire' || kind === 'connect'
            ? ctx.acquireTimeoutMs
            : undefined
    const what =
      kind === 'statement'
        ? 'statement_timeout'
        : kind === 'query'
          ? 'client query timeout'
          : kind === 'acquire'
            ? 'timed out waiting for a free pool connection'
            : kind === 'connect'
              ? 'timed out connecting to the database'
              : 'lock_timeout'
    return pgErrors.create('STRATA_DB_TIMEOUT', {
      message: `Database operation timed out (${what}${budgetMs ? `, budget ${budgetMs} ms` : ''})`,
      details: { kind, ...(budgetMs ? { budgetMs } : {}), ...where, ...fields },
      cause: err,
    })
  }
  if (/unsupported startup parameter/i.test(message(err))) {
    // PgBouncer refuses the session settings we send as startup parameters.
    return pgErrors.create('STRATA_DB_INVALID_CONFIG', {
      message: `${message(err)}: connecting through PgBouncer? Set pgbouncer: true (or ?pgbouncer=true in the URL)`,
      details: { ...where, ...fields },
      cause: err,
    })
  }
  if (isConnectionError(err) || rawCode(err) === '53300') {
    return pgErrors.create('STRATA_DB_UNAVAILABLE', {
      message: `Database is unavailable: ${message(err)}`,
      details: { ...where, ...fields, ...(rawCode(err) ? { code: rawCode(err) } : {}) },
      cause: err,
    })
  }
  return pgErrors.create('STRATA_DB_QUERY_FAILED', {
    message: message(err),
    details: { ...where, ...fields },
    cause: err,
  })
}

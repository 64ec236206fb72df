// Runs caller SQL that must only read, in three layers that each hold on their own:
//   1. the guard (inspect-sql + function-policy) refuses anything but one plain SELECT calling
//      non-volatile, non-denied functions;
//   2. the statement goes over the extended protocol (Parse/Bind/Execute, even with no values),
//      where the server itself refuses a second statement, inside BEGIN READ ONLY with a
//      statement_timeout and standard_conforming_strings on (so the server splits string
//      literals exactly as the parser did);
//   3. when the role `strata_readonly` (created by the pg migration set: NOLOGIN, member of
//      pg_read_all_data) exists and the session may assume it, SET LOCAL ROLE to it, so even a
//      statement that got past 1 and 2 cannot write or call superuser-only functions. When the
//      role is missing (migrations not run, no CREATEROLE, PostgreSQL < 14) or cannot be assumed,
//      layers 1 and 2 still apply.
import type { ClientBase, QueryConfig, QueryResult, QueryResultRow } from 'pg'
import type { TransactionalQueryable } from '../queryable.js'
import { assertNoDeniedFunction, assertSafeFunctions } from './function-policy.js'
import { inspectSql, refusal, type SqlInspection } from './inspect-sql.js'

/** The NOLOGIN role the pg migration set creates for read-only SQL. */
export const READ_ONLY_ROLE = 'strata_readonly'

export interface ReadOnlyOptions {
  /** statement_timeout of each statement in the transaction (ms); 0 keeps the server's. @defaultValue 30000 */
  timeoutMs?: number
  /** Role to SET LOCAL ROLE to when it exists and may be assumed; false to stay. @defaultValue 'strata_readonly' */
  role?: string | false
  /** Volatile functions to allow nonetheless, as 'schema.name' (e.g. 'public.my_report'). @defaultValue [] */
  allowFunctions?: readonly string[]
}

export const READ_ONLY_DEFAULTS = Object.freeze({
  timeoutMs: 30_000, // 30 s
  role: READ_ONLY_ROLE as string | false,
  allowFunctions: [] as readonly string[],
})

/** The part of a pg client (Client or PoolClient) the runner uses. */
export type SqlClient = Pick<ClientBase, 'query'>

/**
 * One statement over the extended protocol even without values: node-postgres only sends
 * Parse/Bind/Execute when there are values or `queryMode: 'extended'`; the simple protocol would
 * run `SELECT 1; COMMIT; DROP …` as three statements.
 */
export function extendedQuery<R extends QueryResultRow = QueryResultRow>(
  client: SqlClient,
  text: string,
  values: readonly unknown[] = [],
): Promise<QueryResult<R>> {
  const config: QueryConfig & { queryMode: 'extended' } = {
    text,
    values: [...values],
    queryMode: 'extended',
  }
  return client.query<R>(config)
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`
}

/**
 * BEGIN READ ONLY with the session settings of layer 2 and the role of layer 3 on `client`.
 * Returns the role in effect (null when none could be assumed). The caller ends the transaction.
 */
export async function beginReadOnly(
  client: SqlClient,
  options: ReadOnlyOptions = {},
): Promise<{ role: string | null }> {
  const timeoutMs = options.timeoutMs ?? READ_ONLY_DEFAULTS.timeoutMs
  const role = options.role ?? READ_ONLY_DEFAULTS.role
  await client.query('BEGIN READ ONLY')
  try {
    await client.query(
      `SET LOCAL standard_conforming_strings = on${
        timeoutMs > 0 ? `; SET LOCAL statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}` : ''
      }`,
    )
    if (role === false) return { role: null }
    // The role's own name would replace "$user" in search_path: pin the schemas in effect now.
    const { rows } = await extendedQuery<{ usable: boolean; path: string | null }>(
      client,
      `SELECT coalesce(pg_has_role(current_user, r.oid, 'MEMBER') AND NOT r.rolsuper, false) AS usable,
              (SELECT string_agg(quote_ident(s), ', ') FROM unnest(current_schemas(false)) AS s) AS path
         FROM (SELECT 1) AS one LEFT JOIN pg_catalog.pg_roles r ON r.rolname = $1`,
      [role],
    )
    if (!rows[0]?.usable) return { role: null }
    await client.query('SAVEPOINT strata_read_only_role')
    try {
      await extendedQuery(client, `SELECT set_config('search_path', $1, true)`, [
        rows[0].path ?? '',
      ])
      await client.query(`SET LOCAL ROLE ${quoteIdent(role)}`)
      await client.query('RELEASE SAVEPOINT strata_read_only_role')
      return { role }
    } catch {
      // Membership without the right to SET ROLE (PostgreSQL 16+ grants can split them).
      await client.query('ROLLBACK TO SAVEPOINT strata_read_only_role')
      return { role: null }
    }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}

/**
 * Runs `fn` inside the read-only transaction of `beginReadOnly` and always rolls back. The seam
 * for callers that run their own statements (and for tests that bypass the guard on purpose).
 */
export async function withReadOnlyTransaction<T>(
  client: SqlClient,
  fn: (client: SqlClient, role: string | null) => Promise<T>,
  options: ReadOnlyOptions = {},
): Promise<T> {
  const { role } = await beginReadOnly(client, options)
  try {
    return await fn(client, role)
  } finally {
    await client.query('ROLLBACK')
  }
}

/**
 * The whole guard on `client`'s session: parse-tree rules, then the catalog check of every
 * called function (run it inside the read-only transaction, after `beginReadOnly`, so the search
 * path is the statement's). Throws STRATA_DB_SQL_NOT_READ_ONLY saying what was refused and why.
 */
export async function checkReadOnlySql(
  client: SqlClient,
  sql: string | SqlInspection,
  options: Pick<ReadOnlyOptions, 'allowFunctions'> = {},
): Promise<SqlInspection> {
  const inspection = typeof sql === 'string' ? await inspectReadOnlySql(sql) : sql
  await assertSafeFunctions(client, inspection, options.allowFunctions)
  return inspection
}

/** The parse-tree half of the guard (no database): one plain SELECT calling no denied function. */
export async function inspectReadOnlySql(sql: string): Promise<SqlInspection> {
  return assertReadOnlyShape(await inspectSql(sql))
}

/** Throws the guard's refusal unless `inspection` is one plain SELECT calling no denied function. */
export function assertReadOnlyShape(inspection: SqlInspection): SqlInspection {
  if (inspection.notReadOnly)
    throw refusal(inspection.notReadOnly.reason, inspection.notReadOnly.message, {
      statement: inspection.statement,
    })
  assertNoDeniedFunction(inspection)
  return inspection
}

/**
 * Runs one read-only SELECT with all three layers and returns its rows.
 *
 * ### Examples
 * ```ts
 * const rows = await runReadOnly(db, 'SELECT count(*) FROM orders WHERE id = $1', [42], { timeoutMs: 5000 })
 * ```
 */
export async function runReadOnly<R extends QueryResultRow = QueryResultRow>(
  db: Pick<TransactionalQueryable, 'withClient'>,
  sql: string,
  params: readonly unknown[] = [],
  options: ReadOnlyOptions = {},
): Promise<R[]> {
  const inspection = await inspectReadOnlySql(sql)
  return db.withClient(
    (client) =>
      withReadOnlyTransaction(
        client,
        async (c) => {
          await checkReadOnlySql(c, inspection, options)
          return (await extendedQuery<R>(c, sql, params)).rows
        },
        options,
      ),
    { label: 'strata:read-only' },
  )
}

// What the parse tree alone says about a statement, from PostgreSQL's own parser (libpg-query,
// compiled to WASM): the statement count, its kind, the data-modifying, SELECT INTO and row-lock
// clauses anywhere in it, every function it calls and every type it casts to. A hand-written lexer
// was not enough: it disagreed with the server on identifiers such as `é$q$`, quoted function
// names and anything past the prefix it read.
import { pgErrors } from '../errors.js'

/** Why the guard refused a statement (`details.reason` of STRATA_DB_SQL_NOT_READ_ONLY). */
export type SqlRefusalReason =
  | 'empty'
  | 'syntax_error'
  | 'statement_count'
  | 'not_a_query'
  | 'data_modifying_cte'
  | 'select_into'
  | 'locking_clause'
  | 'denied_function'
  | 'unknown_function'
  | 'volatile_function'
  | 'security_definer_function'
  | 'volatile_cast'

/** A called function as PostgreSQL folds its name (unquoted lower-cased, quoted kept). */
export interface FunctionRef {
  /** Explicit schema, or null to resolve through the search path. */
  schema: string | null
  name: string
}

export interface SqlInspection {
  /** Parse-tree node of the one statement, e.g. 'SelectStmt', 'DeleteStmt'. */
  statement: string
  /** Why the tree is not a plain read; undefined when it is one (functions still to check). */
  notReadOnly?: { reason: SqlRefusalReason; message: string }
  /** Distinct function calls, in order of appearance. */
  functions: FunctionRef[]
  /**
   * Names after a dot (`t.x`, `(expr).x`): PostgreSQL calls a one-argument function of that name
   * when no column matches (attribute notation: `(0.5::float8).pg_sleep` sleeps).
   */
  attributes: string[]
  /** Distinct type names the statement casts to. */
  casts: FunctionRef[]
  /** Highest `$n` placeholder; 0 when none. */
  maxParam: number
}

type ParseResult = { stmts?: { stmt?: Record<string, unknown> }[] }
let parser: Promise<(sql: string) => Promise<ParseResult>> | undefined

// Loaded on first use: the module compiles ~2 MB of WASM when imported, which processes that
// never check SQL (parse workers, the CLI) should not pay for.
function parseSql(sql: string): Promise<ParseResult> {
  parser ??= import('libpg-query').then(
    (m) => m.parse as unknown as (sql: string) => Promise<ParseResult>,
  )
  return parser.then((parse) => parse(sql))
}

/** The guard's error: what was refused and why. */
export function refusal(
  reason: SqlRefusalReason,
  message: string,
  details: Record<string, unknown> = {},
): Error {
  return pgErrors.create('STRATA_DB_SQL_NOT_READ_ONLY', {
    message: `SQL refused: ${message}`,
    details: { reason, ...details },
  })
}

const STATEMENT_NAMES: Record<string, string> = {
  InsertStmt: 'INSERT',
  UpdateStmt: 'UPDATE',
  DeleteStmt: 'DELETE',
  MergeStmt: 'MERGE',
  ExplainStmt: 'EXPLAIN',
  TransactionStmt: 'a transaction command',
  CreateTableAsStmt: 'CREATE TABLE AS',
  CopyStmt: 'COPY',
  CallStmt: 'CALL',
  DoStmt: 'DO',
  VariableSetStmt: 'SET',
}

/** A readable name of a parse-tree statement node ('DeleteStmt' → 'DELETE'). */
export function statementName(node: string): string {
  return (
    STATEMENT_NAMES[node] ??
    node
      .replace(/Stmt$/, '')
      .replace(/([a-z])([A-Z])/g, '$1 $2')
      .toUpperCase()
  )
}

const DATA_MODIFYING = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'])
const LOCK_STRENGTH: Record<string, string> = {
  LCS_FORKEYSHARE: 'FOR KEY SHARE',
  LCS_FORSHARE: 'FOR SHARE',
  LCS_FORNOKEYUPDATE: 'FOR NO KEY UPDATE',
  LCS_FORUPDATE: 'FOR UPDATE',
}

function names(list: unknown): string[] {
  if (!Array.isArray(list)) return []
  return list.map((n) => {
    const s = (n as { String?: { sval?: string } }).String?.sval
    return typeof s === 'string' ? s : ''
  })
}

/** The last two parts of a (catalog.)(schema.)name list. */
function ref(parts: string[]): FunctionRef {
  const name = parts[parts.length - 1] ?? ''
  return { schema: parts.length >= 2 ? parts[parts.length - 2]! : null, name }
}

/** `schema.name` or `name`, for messages. */
export function displayName(r: FunctionRef): string {
  return r.schema === null ? r.name : `${r.schema}.${r.name}`
}

/**
 * Parses `sql` and reports what the tree says. Throws STRATA_DB_SQL_NOT_READ_ONLY for text that
 * is not exactly one statement (a syntax error, none, or several); the other findings are
 * returned, so EXPLAIN of a write by a trusted caller can still use the inspection.
 */
export async function inspectSql(sql: string): Promise<SqlInspection> {
  if (typeof sql !== 'string' || sql.trim() === '') throw refusal('empty', 'the statement is empty')
  let tree: ParseResult
  try {
    tree = await parseSql(sql)
  } catch (err) {
    const position = (err as { sqlDetails?: { cursorPosition?: number } }).sqlDetails
      ?.cursorPosition
    throw refusal('syntax_error', `syntax error: ${(err as Error).message}`, {
      ...(position !== undefined && position >= 0 ? { position: position + 1 } : {}),
    })
  }
  const stmts = tree.stmts ?? []
  if (stmts.length !== 1)
    throw refusal(
      stmts.length === 0 ? 'empty' : 'statement_count',
      stmts.length === 0
        ? 'the statement is empty'
        : `${stmts.length} statements (exactly one is allowed)`,
      { statements: stmts.length },
    )
  const root = stmts[0]!.stmt ?? {}
  const statement = Object.keys(root)[0] ?? ''
  const out: SqlInspection = { statement, functions: [], attributes: [], casts: [], maxParam: 0 }
  const seenF = new Set<string>()
  const seenT = new Set<string>()
  const seenA = new Set<string>()
  const attribute = (name: string): void => {
    if (name && !seenA.has(name)) {
      seenA.add(name)
      out.attributes.push(name)
    }
  }
  const flag = (reason: SqlRefusalReason, message: string): void => {
    out.notReadOnly ??= { reason, message }
  }
  if (statement !== 'SelectStmt')
    flag('not_a_query', `${statementName(statement)} is not a query (only SELECT is allowed)`)

  // Iterative walk over the whole tree: subqueries, CTEs, FROM items, set operations and
  // expressions all hold the same node kinds, and deep nesting must not exhaust the JS stack.
  const stack: { v: unknown; inCte: boolean }[] = [{ v: root, inCte: false }]
  while (stack.length > 0) {
    const { v, inCte } = stack.pop()!
    if (Array.isArray(v)) {
      for (const x of v) if (x !== null && typeof x === 'object') stack.push({ v: x, inCte })
      continue
    }
    for (const [key, child] of Object.entries(v as Record<string, unknown>)) {
      if (child === null || typeof child !== 'object') continue
      if (DATA_MODIFYING.has(key) && v !== root)
        flag(
          'data_modifying_cte',
          `${statementName(key)} inside ${inCte ? 'WITH' : 'the query'} (data-modifying statements are not allowed)`,
        )
      else if (key === 'intoClause') flag('select_into', 'SELECT INTO creates a table')
      else if (key === 'lockingClause' && Array.isArray(child) && child.length > 0) {
        const strength = (child[0] as { LockingClause?: { strength?: string } }).LockingClause
          ?.strength
        flag(
          'locking_clause',
          `${LOCK_STRENGTH[strength ?? ''] ?? 'FOR UPDATE/SHARE'} locks rows (not a plain read)`,
        )
      } else if (key === 'FuncCall') {
        const r = ref(names((child as { funcname?: unknown }).funcname))
        const k = displayName(r)
        if (!seenF.has(k)) {
          seenF.add(k)
          out.functions.push(r)
        }
      } else if (key === 'TypeCast') {
        const r = ref(names((child as { typeName?: { names?: unknown } }).typeName?.names))
        const k = displayName(r)
        if (!seenT.has(k)) {
          seenT.add(k)
          out.casts.push(r)
        }
      } else if (key === 'ColumnRef') {
        for (const name of names((child as { fields?: unknown }).fields).slice(1)) attribute(name)
      } else if (key === 'A_Indirection') {
        for (const name of names((child as { indirection?: unknown }).indirection)) attribute(name)
      } else if (key === 'ParamRef') {
        const n = (child as { number?: number }).number ?? 0
        if (n > out.maxParam) out.maxParam = n
      }
      stack.push({ v: child, inCte: inCte || key === 'CommonTableExpr' })
    }
  }
  return out
}

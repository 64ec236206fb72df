// Which functions a read-only statement may call. The rule, per called name (folded as
// PostgreSQL folds it, schema-qualified when the caller qualified it):
//   1. a name on DENIED is refused in any schema, whatever its volatility: these read server
//      files, touch large objects, reach other servers, sleep, signal or terminate backends,
//      change settings, take advisory locks, assign transaction ids or run SQL given as text;
//   2. otherwise every pg_proc overload the name can resolve to (its schema, or every schema of
//      the effective search path when unqualified) must be non-volatile (provolatile 'i' or
//      's') and not SECURITY DEFINER, unless it is on ALLOWED (volatile but harmless: random
//      numbers and clocks) or on the caller's own allow-list;
//   3. a name that resolves to nothing is refused (the server would fail anyway, and an unknown
//      name cannot be proven harmless).
// Names after a dot (`t.x`, `(expr).x`) are function calls too when no column matches: PostgreSQL
// reads `(0.5::float8).pg_sleep` as pg_sleep(0.5). Each such name that is a function callable with
// one argument on the search path gets rules 1 and 2; a name that is no such function is a column.
// Checking every overload rather than the one the server will pick keeps the rule independent of
// argument types: an overloaded name is only as safe as its most dangerous overload.
// Casts are checked the same way: a cast to a type whose input function or any cast function
// into it is volatile is refused. Operators are not checked: their functions are the built-in
// immutable ones unless an administrator defined others, and the READ ONLY transaction and the
// restricted role below the guard still hold if one of them misbehaves.
import type { ClientBase } from 'pg'
import { displayName, refusal, type FunctionRef, type SqlInspection } from './inspect-sql.js'

const DENIED: [RegExp, string][] = [
  [/^pg_sleep/, 'sleeps'],
  [/^(pg_read_|pg_ls_|pg_stat_file$|pg_file_|pg_logdir_ls$)/, 'reads server files'],
  [/^(lo_|loread$|lowrite$)/, 'works on large objects'],
  [/^dblink/, 'connects to another server'],
  [/^(set_config$|pg_reload_conf$|pg_rotate_logfile)/, 'changes server settings'],
  [/^(pg_terminate_backend$|pg_cancel_backend$|pg_signal_backend$|pg_log_)/, 'signals backends'],
  [/^pg_(try_)?advisory_/, 'takes advisory locks'],
  [
    /^(pg_notify$|txid_current|pg_current_xact_id)/,
    'writes (notifies or assigns a transaction id)',
  ],
  [/^(query_to_xml|cursor_to_xml|ts_stat$|ts_rewrite$)/, 'runs SQL given as text'],
  [
    /^(pg_switch_wal$|pg_create_|pg_drop_|pg_replication_|pg_promote$|pg_backup_|pg_start_backup$|pg_stop_backup$|pg_wal_replay_|pg_logical_|pg_import_system_collations$|pg_stat_reset|pg_stat_statements_reset$)/,
    'administers the server',
  ],
]

/** Volatile built-ins that only produce values: random numbers, uuids and clocks. */
const ALLOWED = new Set(
  [
    'random',
    'random_normal',
    'gen_random_uuid',
    'uuidv4',
    'uuidv7',
    'clock_timestamp',
    'timeofday',
  ].map((n) => `pg_catalog.${n}`),
)

/** Why `name` is on the deny-list, or undefined. */
export function deniedReason(name: string): string | undefined {
  for (const [re, why] of DENIED) if (re.test(name)) return why
  return undefined
}

/** Refuses a denied function already at parse time (no database needed). */
export function assertNoDeniedFunction(inspection: SqlInspection): void {
  for (const f of inspection.functions) {
    const why = deniedReason(f.name)
    if (why)
      throw refusal('denied_function', `function ${displayName(f)} is not allowed (${why})`, {
        function: displayName(f),
      })
  }
}

interface ProcRow {
  nspname: string
  proname: string
  provolatile: string
  prosecdef: boolean
  on_path: boolean
  /** Callable with exactly one argument (so through attribute notation). */
  one_arg: boolean
}

function matches(f: FunctionRef, r: ProcRow): boolean {
  return r.proname === f.name && (f.schema === null ? r.on_path : r.nspname === f.schema)
}

/**
 * Looks every called function and cast of `inspection` up in the catalog of `client`'s session
 * (same search path as the statement will see) and refuses by the rule at the top of this file.
 */
export async function assertSafeFunctions(
  client: Pick<ClientBase, 'query'>,
  inspection: SqlInspection,
  allow: readonly string[] = [],
): Promise<void> {
  assertNoDeniedFunction(inspection)
  const fns = inspection.functions
  const attributes = inspection.attributes
  if (fns.length > 0 || attributes.length > 0) {
    const { rows } = await client.query<ProcRow>(
      `SELECT n.nspname, p.proname, p.provolatile, p.prosecdef,
              n.nspname = ANY (current_schemas(true)) AS on_path,
              p.pronargs >= 1 AND p.pronargs - p.pronargdefaults <= 1 AS one_arg
         FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE p.proname = ANY ($1::text[])`,
      [[...new Set([...fns.map((f) => f.name), ...attributes])]],
    )
    const allowed = new Set([...ALLOWED, ...allow])
    const check = (r: ProcRow, how: string): void => {
      const qualified = `${r.nspname}.${r.proname}`
      const why = deniedReason(r.proname)
      if (why)
        throw refusal('denied_function', `function ${qualified}${how} is not allowed (${why})`, {
          function: qualified,
        })
      if (allowed.has(qualified)) return
      if (r.provolatile === 'v')
        throw refusal(
          'volatile_function',
          `function ${qualified}${how} is volatile (it may change data or state)`,
          { function: qualified },
        )
      if (r.prosecdef)
        throw refusal(
          'security_definer_function',
          `function ${qualified}${how} is SECURITY DEFINER (it runs with its owner's rights)`,
          { function: qualified },
        )
    }
    for (const name of attributes)
      for (const r of rows)
        if (r.proname === name && r.on_path && r.one_arg) check(r, ` (called as .${name})`)
    for (const f of fns) {
      const found = rows.filter((r) => matches(f, r))
      if (found.length === 0)
        throw refusal(
          'unknown_function',
          `function ${displayName(f)} does not exist${f.schema === null ? ' on the search path' : ''}`,
          { function: displayName(f) },
        )
      for (const r of found) check(r, '')
    }
  }
  if (inspection.casts.length > 0) {
    const { rows } = await client.query<{ nspname: string; typname: string }>(
      `SELECT n.nspname, t.typname
         FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typname = ANY ($1::text[])
          AND (EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.oid = t.typinput AND p.provolatile = 'v')
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
                           WHERE c.casttarget = t.oid AND p.provolatile = 'v'))`,
      [[...new Set(inspection.casts.map((t) => t.name))]],
    )
    for (const t of inspection.casts) {
      const bad = rows.find((r) => r.typname === t.name && (!t.schema || r.nspname === t.schema))
      if (bad)
        throw refusal(
          'volatile_cast',
          `a cast to ${bad.nspname}.${bad.typname} runs a volatile function`,
          { type: `${bad.nspname}.${bad.typname}` },
        )
    }
  }
}

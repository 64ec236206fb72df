// Five characters, digits and upper-case letters; the first two are the class.
const SQLSTATE = /^[0-9A-Z]{5}$/
// Wrapping is at most a few levels deep (StrataError → pg error); stop on a cyclic cause chain.
const MAX_DEPTH = 4
// See isDataError for what each class means and which are left out.
const DATA_ERROR_CLASSES: ReadonlySet<string> = new Set(['21', '22', '23', '54', 'P0'])

function asSqlState(value: unknown): string | undefined {
  // Node's errno codes share the shape (EPIPE, EPERM); no SQLSTATE class starts with E.
  return typeof value === 'string' && SQLSTATE.test(value) && value[0] !== 'E' ? value : undefined
}

/**
 * The SQLSTATE of a Postgres error: a raw pg `DatabaseError`, a StrataError wrapping one (its
 * `cause` chain), or a StrataError rebuilt without a cause that kept the code in `details.code`
 * (as errors sent back from worker threads are). Undefined when there is none.
 */
export function sqlState(err: unknown): string | undefined {
  let e = err
  for (let i = 0; i < MAX_DEPTH && e !== null && typeof e === 'object'; i++) {
    const state =
      asSqlState((e as { code?: unknown }).code) ??
      asSqlState((e as { details?: { code?: unknown } }).details?.code)
    if (state !== undefined) return state
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

/**
 * SQLSTATE classes that blame the data of some row in the statement, so a batch writer should
 * split the batch to find the row(s) and reject only those; the rest of the batch still commits.
 *
 * - `21` cardinality violation: two rows of one batch hit the same target row in
 *   `ON CONFLICT DO UPDATE` (21000), or a lookup matched several rows. Splitting separates them.
 * - `22` data exception: a value the column type refuses (22P02 invalid text representation,
 *   22001 too long, 22003 out of range, 22007 bad date, 22021 bad encoding, 22P04 bad COPY line).
 * - `23` integrity constraint violation: not null, foreign key, unique, check, exclusion.
 * - `54` program limit exceeded: a value too large for the system, e.g. an index row over the
 *   B-tree limit or a too deeply nested JSON document.
 * - `P0` PL/pgSQL: a trigger that refuses a row with `RAISE EXCEPTION` (P0001) or `ASSERT`.
 *
 * Not data errors: retrying or splitting cannot blame a row, and rejecting rows for them would
 * lose good data. `08` connection exception, `25` invalid transaction state, `40` transaction
 * rollback (serialization failure, deadlock: retry the whole batch), `42` syntax error or access
 * rule (the statement is wrong, e.g. 42804 datatype mismatch is found while planning, so every
 * row would fail alike), `53` insufficient resources (disk full, out of memory, too many
 * connections), `55` object not in prerequisite state (lock not available), `57` operator
 * intervention (57014 statement timeout or cancel, 57P01 admin shutdown), `58` system error and
 * `XX` internal error.
 */
export function isDataError(err: unknown): boolean {
  const state = sqlState(err)
  return state !== undefined && DATA_ERROR_CLASSES.has(state.slice(0, 2))
}

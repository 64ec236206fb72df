import pg from 'pg'
import {
  beginReadOnly,
  checkReadOnlySql,
  extendedQuery,
  inspectReadOnlySql,
  pgErrors,
  type Database,
  type SqlClient,
} from '@strata/pg'
import type { SourceRecord } from '../convert.js'
import { importErrors } from '../errors.js'
import { importDefaults } from '../options.js'
import type { PostgresSourceSpec } from '../spec.js'
import type { Source } from './source.js'

/** The SQL guard's refusal as a spec error on source.query (the import API answers 400). */
function invalidQuery(err: unknown): unknown {
  if (!pgErrors.is(err, 'STRATA_DB_SQL_NOT_READ_ONLY')) return err
  return importErrors.create('STRATA_IMPORT_INVALID_SPEC', {
    message: `import spec: source.query ${err.message}`,
    details: { field: 'source.query', ...(err.details as object) },
    cause: err,
  })
}

/**
 * Refuses a source query the SQL guard would refuse, from the parse tree alone (no connection):
 * one plain SELECT without data-modifying CTE, SELECT INTO, row locks or denied functions.
 */
export async function checkSourceQuery(query: string): Promise<void> {
  try {
    await inspectReadOnlySql(query)
  } catch (err) {
    throw invalidQuery(err)
  }
}

/**
 * Reads a SELECT through a server-side cursor, `fetchRows` at a time, with @strata/pg's SQL
 * guard: the query must pass it (the called functions are checked in the source database's
 * catalog), and the cursor lives in its read-only transaction (BEGIN READ ONLY, the
 * strata_readonly role where it exists, … COMMIT), declared over the extended protocol so the
 * query text can only ever be one statement. No statement_timeout: a FETCH of a large sorted
 * query may rightly take long. `skip` rows are passed over with MOVE (a resumed job): the query
 * needs a deterministic ORDER BY for that to be exact. `line` is the 1-based row number.
 */
export async function openPostgresSource(
  spec: PostgresSourceSpec,
  db: Database,
  options: { skip?: number; fetchRows?: number } = {},
): Promise<Source> {
  let inspection
  try {
    inspection = await inspectReadOnlySql(spec.query)
  } catch (err) {
    throw invalidQuery(err)
  }
  let client: SqlClient
  let release: (failure?: unknown) => Promise<void>
  if (spec.url) {
    const c = new pg.Client({ connectionString: spec.url })
    await c.connect()
    client = c
    release = () => c.end()
  } else {
    // Hold one pooled client for the whole read: withClient releases it when `done` settles.
    let done!: (err?: unknown) => void
    const held = new Promise<unknown>((r) => (done = r))
    client = await new Promise<SqlClient>((resolve, reject) => {
      db.withClient(
        async (c) => {
          resolve(c)
          // A failed open hands the client back as failed: withClient then discards it.
          const err = await held
          if (err) throw err
        },
        { label: 'importer.source' },
      ).catch(reject)
    })
    release = async (failure) => done(failure)
  }
  const fetchRows = options.fetchRows ?? importDefaults.cursorFetchRows
  const skip = options.skip ?? 0
  try {
    await beginReadOnly(client, { timeoutMs: 0 })
    await checkReadOnlySql(client, inspection)
    await extendedQuery(
      client,
      `DECLARE strata_src NO SCROLL CURSOR FOR ${spec.query}`,
      spec.params ?? [],
    )
    if (skip > 0) await client.query(`MOVE FORWARD ${Math.floor(skip)} FROM strata_src`)
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    await release(err).catch(() => {})
    throw invalidQuery(err)
  }
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await client.query('COMMIT').catch(() => {})
    await release()
  }
  return {
    header: undefined,
    async *records(): AsyncGenerator<SourceRecord> {
      let line = skip
      try {
        for (;;) {
          const res = await client.query(`FETCH FORWARD ${fetchRows} FROM strata_src`)
          for (const row of res.rows as Record<string, unknown>[])
            yield { line: ++line, fields: row }
          if (res.rows.length < fetchRows) break
        }
      } finally {
        await close()
      }
    },
    close,
  }
}

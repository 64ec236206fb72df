import pg from 'pg'
import type { Database } from '@strata/pg'
import type { SourceRecord } from '../convert.js'
import { importDefaults } from '../options.js'
import type { PostgresSourceSpec } from '../spec.js'
import type { Source } from './source.js'

interface CursorClient {
  query(sql: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>
}

/**
 * Reads a SELECT through a server-side cursor in a read-only transaction, `fetchRows` at a time.
 * `skip` rows are passed over with MOVE (a resumed job): the query needs a deterministic ORDER BY
 * for that to be exact. `line` is the 1-based row number.
 */
export async function openPostgresSource(
  spec: PostgresSourceSpec,
  db: Database,
  options: { skip?: number; fetchRows?: number } = {},
): Promise<Source> {
  let client: CursorClient
  let release: () => Promise<void>
  if (spec.url) {
    const c = new pg.Client({ connectionString: spec.url })
    await c.connect()
    client = c
    release = () => c.end()
  } else {
    // Hold one pooled client for the whole read: withClient releases it when `done` settles.
    let done!: () => void
    const held = new Promise<void>((r) => (done = r))
    client = await new Promise<CursorClient>((resolve, reject) => {
      db.withClient(
        async (c) => {
          resolve(c as unknown as CursorClient)
          await held
        },
        { label: 'importer.source' },
      ).catch(reject)
    })
    release = async () => done()
  }
  const fetchRows = options.fetchRows ?? importDefaults.cursorFetchRows
  await client.query('BEGIN READ ONLY')
  await client.query(`DECLARE strata_src NO SCROLL CURSOR FOR ${spec.query}`, spec.params ?? [])
  const skip = options.skip ?? 0
  if (skip > 0) await client.query(`MOVE FORWARD ${Math.floor(skip)} FROM strata_src`)
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
          for (const row of res.rows) yield { line: ++line, fields: row }
          if (res.rows.length < fetchRows) break
        }
      } finally {
        await close()
      }
    },
    close,
  }
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runImport } from '@strata/importer'
import { migrate, pgMigrations } from '@strata/pg'
import { openPostgresSource } from '../src/sources/postgres-source.js'
import { importerTestEnv, type ImporterTestEnv } from './support/importer-db.js'

let env: ImporterTestEnv
beforeAll(async () => {
  env = await importerTestEnv(
    'impguard',
    `CREATE TABLE legacy (n int PRIMARY KEY, label text);
     INSERT INTO legacy SELECT g, 'L' || g FROM generate_series(1, 40) g;
     CREATE TABLE ev (id int, kind text);
     CREATE FUNCTION bump() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1';`,
  )
  // The restricted role (cluster-wide) the read-only runner switches to.
  await migrate(env.db, [pgMigrations])
})
afterAll(async () => env?.close())

const spec = (query: string, params?: unknown[]) => ({
  source: { format: 'postgres', query, ...(params ? { params } : {}) },
  target: { table: 'ev' },
  columns: { id: { type: 'int' }, kind: {} },
})

async function tableExists(name: string): Promise<boolean> {
  const [r] = await env.rows<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [name])
  return r!.ok
}

describe('postgres source: the SQL guard', () => {
  it.each([
    ['SELECT n AS id FROM legacy; COMMIT; CREATE TABLE x ()', 'statement_count'],
    ['WITH d AS (DELETE FROM legacy RETURNING n) SELECT n AS id FROM d', 'data_modifying_cte'],
    ['SELECT n AS id INTO x FROM legacy', 'select_into'],
    ['SELECT n AS id FROM legacy FOR UPDATE', 'locking_clause'],
    ['SELECT pg_sleep(0) AS id', 'denied_function'],
    ['SELECT "pg_sleep"(0) AS id', 'denied_function'],
    ["SELECT pg_catalog.set_config('a.b', 'c', false) AS id", 'denied_function'],
    ['SELECT public.bump() AS id', 'volatile_function'],
    ['VALUES (1); DROP TABLE legacy', 'statement_count'],
  ])('refuses %s (%s) and changes nothing', async (query, reason) => {
    if (reason === 'volatile_function') {
      // Known only from the source's catalog: the job fails when it opens the source.
      const r = await runImport(env.db, spec(query))
      expect(r.status).toBe('failed')
      expect(r.reason).toMatch(/source\.query SQL refused: function public\.bump is volatile/)
    } else {
      // Known from the parse tree: the request itself fails, before a job exists.
      await expect(runImport(env.db, spec(query))).rejects.toMatchObject({
        code: 'STRATA_IMPORT_INVALID_SPEC',
        details: { field: 'source.query', reason },
      })
    }
    await expect(openPostgresSource(spec(query).source as never, env.db)).rejects.toMatchObject({
      code: 'STRATA_IMPORT_INVALID_SPEC',
      details: { field: 'source.query', reason },
    })
    expect(await tableExists('x')).toBe(false)
    const [c] = await env.rows<{ n: number }>('SELECT count(*)::int AS n FROM legacy')
    expect(c!.n).toBe(40)
  })

  it('reads through a cursor in a read-only transaction, as the restricted role', async () => {
    const src = await openPostgresSource(
      {
        format: 'postgres',
        query: `SELECT current_setting('transaction_read_only') AS ro, current_user AS who, n FROM legacy WHERE n <= $1 ORDER BY n`,
        params: [3],
      },
      env.db,
    )
    const rows: unknown[] = []
    for await (const r of src.records()) rows.push(r.fields)
    expect(rows).toEqual([1, 2, 3].map((n) => ({ ro: 'on', who: 'strata_readonly', n })))
  })

  it('imports an allowed query with parameters', async () => {
    await env.db.query('TRUNCATE ev')
    const r = await runImport(
      env.db,
      spec('SELECT n AS id, label AS kind FROM legacy WHERE n > $1 ORDER BY n', [30]),
    )
    expect(r.status).toBe('completed')
    expect(r.counts.loaded).toBe(10)
  })
})

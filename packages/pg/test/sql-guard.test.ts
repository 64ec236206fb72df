import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createDatabase,
  extendedQuery,
  inspectReadOnlySql,
  migrate,
  pgMigrations,
  READ_ONLY_ROLE,
  runReadOnly,
  withReadOnlyTransaction,
  type Database,
} from '@strata/pg'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'

let tdb: TestDatabase
let db: Database

beforeAll(async () => {
  tdb = await createTestDatabase('guard')
  db = await createDatabase({ url: tdb.url })
  // The pg migration set creates the restricted role (cluster-wide, idempotent).
  await migrate(db, [pgMigrations])
  await db.query(`CREATE TABLE t (id int PRIMARY KEY, v text)`)
  await db.query(`INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50) g`)
  await db.query(`CREATE SEQUENCE s`)
  await db.query(
    `CREATE FUNCTION public.my_volatile() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1'`,
  )
  await db.query(
    `CREATE FUNCTION public.my_rows() RETURNS SETOF int LANGUAGE sql VOLATILE AS 'SELECT 1'`,
  )
  await db.query(
    `CREATE FUNCTION public.my_stable(int) RETURNS int LANGUAGE sql STABLE AS 'SELECT $1'`,
  )
  await db.query(
    `CREATE FUNCTION public.my_definer() RETURNS int LANGUAGE sql STABLE SECURITY DEFINER AS 'SELECT 1'`,
  )
  await db.query(
    `CREATE FUNCTION public."Shouty"() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1'`,
  )
  await db.query(
    `CREATE FUNCTION public.vol1(int) RETURNS int LANGUAGE sql VOLATILE AS 'SELECT $1'`,
  )
  await db.query(`CREATE FUNCTION public.twice(t) RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 2'`)
  await db.query(`CREATE TYPE boxed AS (x int)`)
  await db.query(
    `CREATE FUNCTION public.to_boxed(int) RETURNS boxed LANGUAGE sql VOLATILE AS 'SELECT ROW($1)::boxed'`,
  )
  await db.query(`CREATE CAST (int AS boxed) WITH FUNCTION public.to_boxed(int)`)
})
afterAll(async () => {
  await db?.close()
  await tdb?.drop()
})

async function tableExists(name: string): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [
    name,
  ])
  return rows[0]!.ok
}

/** Refused by the runner and by the query-plan path (EXPLAIN and EXPLAIN ANALYZE), same reason. */
async function expectRefused(sql: string, reason: string, message?: RegExp): Promise<void> {
  const err = await runReadOnly(db, sql).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err, sql).toMatchObject({
    code: 'STRATA_DB_SQL_NOT_READ_ONLY',
    status: 400,
    details: { reason },
  })
  if (message) expect((err as Error).message).toMatch(message)
  for (const analyze of [false, true])
    await expect(
      db.explain(sql, undefined, { readOnly: true, analyze }),
      `explain ${sql}`,
    ).rejects.toMatchObject({ code: 'STRATA_DB_EXPLAIN_REJECTED', details: { reason } })
}

describe('SQL guard: statements', () => {
  it('refuses more than one statement; the server never runs the rest', async () => {
    await expectRefused('SELECT 1; COMMIT; CREATE TABLE x()', 'statement_count', /3 statements/)
    await expectRefused('SELECT 1;;COMMIT;CREATE TABLE x ()', 'statement_count')
    expect(await tableExists('x')).toBe(false)
  })

  it('refuses writes, DDL and transaction control', async () => {
    await expectRefused('DELETE FROM t', 'not_a_query', /DELETE is not a query/)
    await expectRefused('CREATE TABLE y (a int)', 'not_a_query')
    await expectRefused('COMMIT', 'not_a_query')
    await expectRefused('COPY t TO STDOUT', 'not_a_query')
    expect(await tableExists('y')).toBe(false)
  })

  it('refuses data-modifying statements inside WITH, wherever the WITH is', async () => {
    await expectRefused(
      'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
      'data_modifying_cte',
      /DELETE inside WITH/,
    )
    await expectRefused(
      "WITH a AS (SELECT 1), u AS (UPDATE t SET v = 'x' RETURNING id) SELECT * FROM u",
      'data_modifying_cte',
      /UPDATE inside WITH/,
    )
    await expectRefused(
      'SELECT * FROM (WITH i AS (INSERT INTO t VALUES (1000) RETURNING id) SELECT * FROM i) s',
      'data_modifying_cte',
    )
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM t')
    expect(rows[0]!.n).toBe(50)
  })

  it('refuses SELECT INTO and row locks, also in subqueries and set operations', async () => {
    await expectRefused('SELECT * INTO t2 FROM t', 'select_into')
    expect(await tableExists('t2')).toBe(false)
    await expectRefused('SELECT * FROM t FOR UPDATE', 'locking_clause', /FOR UPDATE/)
    await expectRefused('SELECT * FROM t FOR KEY SHARE NOWAIT', 'locking_clause', /FOR KEY SHARE/)
    await expectRefused('SELECT * FROM (SELECT * FROM t FOR SHARE) s', 'locking_clause')
    await expectRefused('SELECT 1 UNION SELECT id FROM t FOR NO KEY UPDATE', 'locking_clause')
  })

  it('refuses text that is not SQL, with the position', async () => {
    const err = await inspectReadOnlySql('SELECT FROM WHERE (').catch((e: unknown) => e)
    expect(err).toMatchObject({ details: { reason: 'syntax_error' } })
    await expectRefused('   ', 'empty')
  })
})

describe('SQL guard: functions', () => {
  it('refuses volatile functions however they are spelled or placed', async () => {
    await expectRefused('SELECT pg_sleep(1)', 'denied_function', /pg_sleep/)
    await expectRefused('SELECT "pg_sleep"(1)', 'denied_function')
    await expectRefused('SELECT PG_CATALOG.PG_SLEEP(1)', 'denied_function')
    await expectRefused(
      'SELECT public.my_volatile()',
      'volatile_function',
      /function public\.my_volatile is volatile/,
    )
    await expectRefused('SELECT my_volatile()', 'volatile_function')
    await expectRefused('SELECT * FROM my_rows()', 'volatile_function')
    await expectRefused('SELECT * FROM t, LATERAL my_rows() r', 'volatile_function')
    await expectRefused(
      'WITH c AS (SELECT my_volatile() AS v) SELECT * FROM c',
      'volatile_function',
    )
    await expectRefused('SELECT * FROM t WHERE id IN (SELECT my_volatile())', 'volatile_function')
    await expectRefused('SELECT CAST(my_volatile() AS text)', 'volatile_function')
    await expectRefused("SELECT nextval('s')", 'volatile_function', /nextval/)
    await expectRefused('SELECT "Shouty"()', 'volatile_function', /public\.Shouty/)
    await expectRefused(
      'SELECT count(*) FILTER (WHERE my_volatile() = 1) FROM t',
      'volatile_function',
    )
  })

  it('refuses functions called with attribute notation ((x).f is f(x))', async () => {
    await expectRefused('SELECT (0.01::float8).pg_sleep', 'denied_function', /called as \.pg_sleep/)
    await expectRefused('SELECT (id).vol1 FROM t', 'volatile_function', /public\.vol1/)
    await expectRefused('SELECT t.twice FROM t', 'volatile_function', /public\.twice/)
    await expectRefused('SELECT (t).twice FROM t', 'volatile_function')
    // Plain columns behind a dot stay allowed.
    await expect(runReadOnly(db, 'SELECT t.v, (t).id FROM t WHERE t.id = 1')).resolves.toEqual([
      { v: 'v1', id: 1 },
    ])
  })

  it('refuses denied functions even when they are not volatile, in any schema', async () => {
    await expectRefused("SELECT pg_catalog.set_config('x.y', 'z', false)", 'denied_function')
    await expectRefused("SELECT pg_read_file('PG_VERSION')", 'denied_function', /server files/)
    await expectRefused('SELECT pg_terminate_backend(pg_backend_pid())', 'denied_function')
    await expectRefused('SELECT txid_current()', 'denied_function')
    await expectRefused("SELECT query_to_xml('SELECT 1', true, true, '')", 'denied_function')
    await expectRefused('SELECT lo_import(1)', 'denied_function')
    await expectRefused('SELECT anywhere.dblink_exec(1)', 'denied_function')
  })

  it('refuses unknown and SECURITY DEFINER functions and volatile casts', async () => {
    await expectRefused('SELECT shouty()', 'unknown_function', /shouty does not exist/)
    await expectRefused('SELECT nowhere.f()', 'unknown_function')
    await expectRefused('SELECT my_definer()', 'security_definer_function')
    await expectRefused('SELECT 1::boxed', 'volatile_cast', /boxed/)
  })

  it('allows stable and immutable functions, random numbers and clocks', async () => {
    const rows = await runReadOnly<{ n: number }>(
      db,
      "SELECT count(*)::int AS n, now() <= clock_timestamp() AS c, random() < 1 AS r, lower('A'), my_stable(1), extract(year FROM now()) FROM t",
    )
    expect(rows[0]!.n).toBe(50)
    await expect(runReadOnly(db, 'SELECT gen_random_uuid()')).resolves.toHaveLength(1)
  })
})

describe('SQL guard: what PostgreSQL parses, not a lexer', () => {
  it('sees a dangerous tail past the first 16 KiB of a 100 KB statement', async () => {
    const pad = 'x'.repeat(20_000)
    await expectRefused(`SELECT '${pad}' AS a; DROP TABLE t`, 'statement_count')
    await expectRefused(`SELECT 1 AS a /* ${pad} */, pg_sleep(10)`, 'denied_function')
    const big = `SELECT length('${'y'.repeat(99_000)}') AS n, my_volatile() AS v`
    expect(big.length).toBeGreaterThan(99_000)
    await expectRefused(big, 'volatile_function')
    expect(await tableExists('t')).toBe(true)
  })

  it('splits dollar quotes and identifiers as PostgreSQL does', async () => {
    // A string holding `é$q$`, then a dollar-quoted string: one statement, nothing dropped.
    const rows = await runReadOnly<{ s: string }>(
      db,
      `SELECT 'é$q$' || $q$ ; DROP TABLE t; $q$ AS s`,
    )
    expect(rows[0]!.s).toBe('é$q$ ; DROP TABLE t; ')
    // `é$q$` is one identifier for PostgreSQL (a lexer treating é as a word end saw a dollar
    // quote swallowing the rest): three statements.
    await expectRefused(`SELECT 1 AS é$q$; DROP TABLE t; SELECT $q$x$q$`, 'statement_count')
    expect(await tableExists('t')).toBe(true)
  })
})

describe('read-only runner', () => {
  it('runs an allowed statement with parameters, and explains it (ANALYZE too)', async () => {
    const sql = 'SELECT count(*)::int AS n FROM t WHERE id = $1'
    expect(await runReadOnly<{ n: number }>(db, sql, [3])).toEqual([{ n: 1 }])
    const generic = await db.explain(sql, undefined, { readOnly: true })
    expect(generic.generic).toBe(true)
    const analyzed = await db.explain(sql, [3], { readOnly: true, analyze: true })
    expect(analyzed.analyzed).toBe(true)
    // It ran with the parameter: one row out of the count, timed.
    expect(analyzed.plan.actualRows).toBe(1)
    expect(Number.isFinite(analyzed.executionMs)).toBe(true)
    const plain = await db.explain('SELECT * FROM t ORDER BY v', [], {
      readOnly: true,
      analyze: true,
    })
    expect(plain.plan.actualRows).toBe(50)
  })

  it('always uses the extended protocol: the server refuses a second statement', async () => {
    await db.withClient(async (client) => {
      await expect(extendedQuery(client, 'SELECT 1; SELECT 2')).rejects.toMatchObject({
        code: '42601',
      })
    })
  })

  it('applies a statement timeout', async () => {
    await expect(
      runReadOnly(db, 'SELECT count(*) FROM generate_series(1, 1000000000)', [], {
        timeoutMs: 50,
      }),
    ).rejects.toMatchObject({ code: 'STRATA_DB_TIMEOUT' })
  })

  it('refuses writes and superuser functions even when the guard is bypassed', async () => {
    await db.withClient(async (client) => {
      const role = await withReadOnlyTransaction(client, async (c, r) => {
        await expect(extendedQuery(c, 'INSERT INTO t VALUES (999)')).rejects.toMatchObject({
          code: '25006', // read_only_sql_transaction
        })
        return r
      })
      expect(role).toBe(READ_ONLY_ROLE)
      await withReadOnlyTransaction(client, async (c) => {
        await expect(extendedQuery(c, 'CREATE TABLE z (a int)')).rejects.toMatchObject({
          code: '25006',
        })
      })
      await withReadOnlyTransaction(client, async (c) => {
        // The connecting user is a superuser here; the role is not.
        await expect(extendedQuery(c, "SELECT pg_read_file('PG_VERSION')")).rejects.toMatchObject({
          code: '42501', // insufficient_privilege
        })
      })
      await withReadOnlyTransaction(client, async (c) => {
        // pg_read_all_data: the role still reads every table.
        const { rows } = await extendedQuery<{ n: number }>(c, 'SELECT count(*)::int AS n FROM t')
        expect(rows[0]!.n).toBe(50)
      })
      // Back to the connecting user after the transaction.
      const { rows } = await client.query<{ u: string }>('SELECT current_user AS u')
      expect(rows[0]!.u).not.toBe(READ_ONLY_ROLE)
    })
    expect(await tableExists('z')).toBe(false)
  })

  it('still runs READ ONLY without a role to switch to', async () => {
    await db.withClient(async (client) => {
      await withReadOnlyTransaction(
        client,
        async (c, role) => {
          expect(role).toBeNull()
          await expect(extendedQuery(c, 'DELETE FROM t')).rejects.toMatchObject({ code: '25006' })
        },
        { role: 'strata_no_such_role' },
      )
    })
  })
})

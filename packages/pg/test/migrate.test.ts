import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase, migrate, migrationStatus, pgErrors } from '@strata/pg'
import type { Database } from '@strata/pg'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'

let tdb: TestDatabase
let db: Database
let dir: string

beforeAll(async () => {
  tdb = await createTestDatabase('pgmig')
  db = await createDatabase({ url: tdb.url, pool: { max: 3 } })
  dir = await mkdtemp(join(tmpdir(), 'strata-mig-'))
})
afterAll(async () => {
  await db?.close()
  await tdb?.drop()
  await rm(dir, { recursive: true, force: true })
})

async function writeSet(name: string, files: Record<string, string>): Promise<string> {
  const d = join(dir, name)
  await mkdir(d, { recursive: true })
  for (const [f, sql] of Object.entries(files)) await writeFile(join(d, f), sql)
  return d
}

describe('migrate', () => {
  it('two concurrent migrators (separate pools) apply each migration exactly once, in order', async () => {
    const files: Record<string, string> = {}
    // Each migration appends to a log table: a double application would show up as a duplicate row
    // (or fail on CREATE TABLE). pg_sleep widens the race window.
    files['0001_log.sql'] =
      'CREATE TABLE mig_log (version int NOT NULL, at timestamptz DEFAULT now());\nINSERT INTO mig_log (version) VALUES (1);'
    for (let v = 2; v <= 10; v++)
      files[`${String(v).padStart(4, '0')}_step_${v}.sql`] =
        `SELECT pg_sleep(0.02);\nINSERT INTO mig_log (version) VALUES (${v});`
    const d = await writeSet('race', files)
    const a = await createDatabase({ url: tdb.url, name: 'migA' })
    const b = await createDatabase({ url: tdb.url, name: 'migB' })
    try {
      const [ra, rb] = await Promise.all([
        migrate(a, { name: 'race', dir: d }),
        migrate(b, { name: 'race', dir: d }),
      ])
      const versions = [...ra, ...rb].map((m) => m.version).sort((x, y) => x - y)
      expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      const { rows } = await db.query<{ version: number }>(
        'SELECT version FROM mig_log ORDER BY at, version',
      )
      expect(rows.map((r) => r.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      // Second run is a no-op.
      expect(await migrate(a, { name: 'race', dir: d })).toEqual([])
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('sorts numerically, keeps sets apart, reports status', async () => {
    const d1 = await writeSet('alpha', {
      '2_second.sql': 'INSERT INTO alpha_t VALUES (2);',
      '10_tenth.sql': 'INSERT INTO alpha_t VALUES (10);',
      '1_first.sql': 'CREATE TABLE alpha_t (v int);',
      'README.md': 'not a migration',
    })
    const d2 = await writeSet('beta', { '0001_first.sql': 'CREATE TABLE beta_t (v int);' })
    const sets = [
      { name: 'alpha', dir: d1 },
      { name: 'beta', dir: new URL(`file://${d2}/`) },
    ]
    expect(
      (await migrationStatus(db, sets)).map((s) => `${s.set}/${s.version}:${s.state}`),
    ).toEqual(['alpha/1:pending', 'alpha/2:pending', 'alpha/10:pending', 'beta/1:pending'])
    const applied = await migrate(db, sets)
    expect(applied.map((m) => `${m.set}/${m.version}/${m.name}`)).toEqual([
      'alpha/1/first',
      'alpha/2/second',
      'alpha/10/tenth',
      'beta/1/first',
    ])
    const { rows } = await db.query<{ v: number }>('SELECT v FROM alpha_t')
    expect(rows.map((r) => r.v)).toEqual([2, 10])
    expect((await migrationStatus(db, sets)).every((s) => s.state === 'applied')).toBe(true)
  })

  it('accepts a bare directory (set "app")', async () => {
    const d = await writeSet('plain', { '0001_t.sql': 'CREATE TABLE plain_t (v int);' })
    expect((await migrate(db, d)).map((m) => `${m.set}/${m.version}`)).toEqual(['app/1'])
    expect((await migrationStatus(db, d))[0]!.state).toBe('applied')
  })

  it('detects a changed applied file with STRATA_DB_MIGRATION_CHECKSUM_MISMATCH', async () => {
    const d = await writeSet('gamma', { '0001_t.sql': 'CREATE TABLE gamma_t (v int);' })
    await migrate(db, { name: 'gamma', dir: d })
    await writeFile(join(d, '0001_t.sql'), 'CREATE TABLE gamma_t (v bigint);')
    const err = await migrate(db, { name: 'gamma', dir: d }).catch((e: unknown) => e)
    expect(pgErrors.is(err, 'STRATA_DB_MIGRATION_CHECKSUM_MISMATCH')).toBe(true)
    expect((err as { details: unknown }).details).toMatchObject({ set: 'gamma', version: 1 })
    expect((await migrationStatus(db, { name: 'gamma', dir: d }))[0]!.state).toBe('changed')
  })

  it('rolls back a failing migration and reports STRATA_DB_MIGRATION_FAILED with the pg fields', async () => {
    const d = await writeSet('delta', {
      '0001_ok.sql': 'CREATE TABLE delta_t (v int NOT NULL);',
      '0002_bad.sql': 'INSERT INTO delta_t VALUES (1);\nINSERT INTO delta_t VALUES (NULL);',
    })
    const err = await migrate(db, { name: 'delta', dir: d }).catch((e: unknown) => e)
    expect(pgErrors.is(err, 'STRATA_DB_MIGRATION_FAILED')).toBe(true)
    expect((err as { details: unknown }).details).toMatchObject({
      set: 'delta',
      version: 2,
      code: '23502',
      column: 'v',
    })
    expect((await db.query('SELECT * FROM delta_t')).rowCount).toBe(0)
    const status = await migrationStatus(db, { name: 'delta', dir: d })
    expect(status.map((s) => s.state)).toEqual(['applied', 'pending'])
  })

  it('runs a -- strata:no-transaction file outside a transaction (CREATE INDEX CONCURRENTLY)', async () => {
    const d = await writeSet('eps', {
      '0001_t.sql': 'CREATE TABLE eps_t (v int);',
      '0002_idx.sql':
        '-- strata:no-transaction\nCREATE INDEX CONCURRENTLY eps_t_v ON eps_t (v);\n-- second one\nCREATE INDEX CONCURRENTLY eps_t_v2 ON eps_t (v, v);\n',
    })
    const applied = await migrate(db, { name: 'eps', dir: d })
    expect(applied.map((m) => m.version)).toEqual([1, 2])
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = 'eps_t'`,
    )
    expect(rows[0]!.n).toBe(2)
    // No advisory lock left behind on a pooled connection.
    const locks = await db.query(
      `SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
       WHERE l.locktype = 'advisory' AND d.datname = current_database()`,
    )
    expect(locks.rowCount).toBe(0)
  })
})

import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { getImportJob, importErrors, listRejects, runImport } from '@strata/importer'
import { importerTestEnv, type ImporterTestEnv } from './support/importer-db.js'

let env: ImporterTestEnv
beforeAll(async () => {
  env = await importerTestEnv(
    'imppipe',
    `CREATE TABLE orgs (id serial PRIMARY KEY, code text UNIQUE NOT NULL);
     INSERT INTO orgs (code) SELECT 'ORG' || g FROM generate_series(1, 20) g;
     CREATE TABLE users (
       id bigint PRIMARY KEY, email text UNIQUE NOT NULL, name varchar(10), role text,
       active boolean, score numeric, born date, created_at timestamptz, ext_id uuid,
       meta jsonb, org_id int REFERENCES orgs (id), CHECK (score IS NULL OR score >= 0));`,
  )
})
afterAll(async () => env?.close())
beforeEach(async () => {
  await env.db.query('TRUNCATE users')
})

const columns = {
  id: { from: 'id', type: 'bigint', required: true },
  email: { from: 'email', type: 'email', required: true, transform: ['trim', 'lower'] },
  name: { from: 'name' },
  role: {
    from: 'role',
    type: 'enum',
    values: ['admin', 'user'],
    default: 'user',
    transform: { map: { ADM: 'admin', USR: 'user' } },
  },
  active: { from: 'active', type: 'bool' },
  score: { from: 'score', type: 'numeric' },
  born: { from: 'born', type: 'date', formats: ['DD/MM/YYYY'] },
  created_at: {
    from: 'created',
    type: 'timestamp',
    formats: ['YYYY/MM/DD HH:mm'],
    tz: 'Europe/Paris',
  },
  ext_id: { from: 'ext', type: 'uuid' },
  meta: { from: 'meta', type: 'json' },
  org_id: { from: 'org', lookup: { table: 'orgs', column: 'code', returns: 'id' } },
}
const HEADER = 'id,email,name,role,active,score,born,created,ext,meta,org'

function csvSpec(path: string, extra: Record<string, unknown> = {}) {
  return {
    source: { format: 'csv', path },
    target: { table: 'users' },
    columns,
    errors: { maxErrorRate: 1 },
    ...extra,
  }
}

describe('validate → transform → lookup → write', () => {
  it('converts every type, applies transforms, defaults and lookups', async () => {
    const path = env.file(
      'types.csv',
      `${HEADER}\n` +
        `1, Ann@Example.COM ,Ann,ADM,yes,1.5,24/12/1990,2024/03/31 02:30,{6F9619FF-8B86-D011-B42D-00CF4FC964FF},"{""a"": [1, 2]}",ORG3\n` +
        `2,bob@example.com,Bob,,0,,1991-01-02,2024-01-01T10:00:00Z,,,\n`,
    )
    const r = await runImport(env.db, csvSpec(path))
    expect(r.status).toBe('completed')
    expect(r.counts).toEqual({ read: 2, loaded: 2, rejected: 0, skipped: 0 })
    const rows = await env.rows(
      `SELECT id::int, email, name, role, active, score::text, born::text, created_at AT TIME ZONE 'UTC' AS utc, ext_id::text, meta, org_id FROM users ORDER BY id`,
    )
    expect(rows[0]).toMatchObject({
      id: 1,
      email: 'ann@example.com',
      role: 'admin',
      active: true,
      score: '1.5',
      born: '1990-12-24',
      ext_id: '6f9619ff-8b86-d011-b42d-00cf4fc964ff',
      meta: { a: [1, 2] },
      org_id: 3,
    })
    // 02:30 on 2024-03-31 does not exist in Paris (DST gap): resolved forward consistently.
    expect((rows[0]!.utc as Date).toISOString().slice(0, 10)).toBe('2024-03-31')
    expect(rows[1]).toMatchObject({
      id: 2,
      role: 'user',
      active: false,
      score: null,
      born: '1991-01-02',
      meta: null,
      org_id: null,
    })
  })

  it('converts a wall-clock timestamp in a named zone to the right instant', async () => {
    const path = env.file('tz.csv', `${HEADER}\n1,a@x.io,,,,,,2024/07/01 12:00,,,\n`)
    await runImport(env.db, csvSpec(path))
    const [row] = await env.rows<{ t: string }>(
      `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS t FROM users`,
    )
    expect(row!.t).toBe('2024-07-01 10:00')
  })

  it('rejects bad values with line, column, code and reason, and loads the rest', async () => {
    const rejectFile = env.file('bad.rejects.csv', '')
    const path = env.file(
      'bad.csv',
      `${HEADER}\n` +
        `1,good@x.io,,,,,,,,,ORG1\n` +
        `2,not-an-email,,,,,,,,,\n` +
        `3,c@x.io,,boss,,,,,,,\n` +
        `4,d@x.io,,,maybe,,,,,,\n` +
        `5,e@x.io,,,,,31/02/2020,,,,\n` +
        `6,f@x.io,,,,,,,,{oops,\n` +
        `7,g@x.io,,,,,,,,,NOPE\n` +
        `,h@x.io,,,,,,,,,\n` +
        `9,i@x.io,,,,,,,zz,,\n` +
        `10,j@x.io,,,,,,,,,ORG2\n`,
    )
    const r = await runImport(env.db, csvSpec(path, { errors: { maxErrorRate: 1, rejectFile } }))
    expect(r.status).toBe('completed')
    expect(r.counts).toEqual({ read: 10, loaded: 2, rejected: 8, skipped: 0 })
    const rejects = await listRejects(env.db, r.jobId)
    expect(rejects.map((x) => [x.line, x.column, x.code])).toEqual([
      [3, 'email', 'STRATA_IMPORT_INVALID_VALUE'],
      [4, 'role', 'STRATA_IMPORT_INVALID_VALUE'],
      [5, 'active', 'STRATA_IMPORT_INVALID_VALUE'],
      [6, 'born', 'STRATA_IMPORT_INVALID_VALUE'],
      [7, 'meta', 'STRATA_IMPORT_INVALID_VALUE'],
      [8, 'org_id', 'STRATA_IMPORT_LOOKUP_MISSING'],
      [9, 'id', 'STRATA_IMPORT_REQUIRED'],
      [10, 'ext_id', 'STRATA_IMPORT_INVALID_VALUE'],
    ])
    const file = readFileSync(rejectFile, 'utf8').trim().split('\n')
    expect(file).toHaveLength(9)
    expect(file[6]).toBe(
      '8,org_id,STRATA_IMPORT_LOOKUP_MISSING,"no row in ""public"".""orgs"" matches ""NOPE""",7,g@x.io,,,,,,,,,NOPE',
    )
  })

  it('bisects a batch the database refuses down to the single bad row', async () => {
    // name is varchar(10) and score has a CHECK: only the database knows; 1 bad row in 64.
    const lines = [HEADER]
    for (let i = 1; i <= 64; i++)
      lines.push(
        `${i},u${i}@x.io,${i === 37 ? 'far-too-long-name' : 'n'},,,${i === 50 ? '-1' : '1'},,,,,`,
      )
    const path = env.file('bisect.csv', lines.join('\n') + '\n')
    const r = await runImport(env.db, csvSpec(path, { batch: { initial: 64, min: 1, max: 64 } }))
    expect(r.counts).toEqual({ read: 64, loaded: 62, rejected: 2, skipped: 0 })
    const rejects = await listRejects(env.db, r.jobId)
    expect(rejects.map((x) => [x.line, x.code])).toEqual([
      [38, 'STRATA_IMPORT_DB_REJECTED'],
      [51, 'STRATA_IMPORT_DB_REJECTED'],
    ])
    expect(rejects[0]!.message).toContain('22001')
    expect(rejects[1]!.message).toContain('23514')
    const [count] = await env.rows<{ n: number }>('SELECT count(*)::int AS n FROM users')
    expect(count!.n).toBe(62)
  })

  it('rejects duplicate keys in insert mode (in the file and against existing rows)', async () => {
    await env.db.query(`INSERT INTO users (id, email) VALUES (100, 'old@x.io')`)
    const path = env.file(
      'dups.csv',
      `${HEADER}\n1,a@x.io,,,,,,,,,\n1,b@x.io,,,,,,,,,\n100,c@x.io,,,,,,,,,\n2,old@x.io,,,,,,,,,\n`,
    )
    const r = await runImport(env.db, csvSpec(path, { target: { table: 'users', key: ['id'] } }))
    expect(r.counts).toEqual({ read: 4, loaded: 1, rejected: 3, skipped: 0 })
    const rejects = await listRejects(env.db, r.jobId)
    expect(rejects.map((x) => [x.line, x.code])).toEqual([
      [3, 'STRATA_IMPORT_DUPLICATE_KEY'],
      [4, 'STRATA_IMPORT_DUPLICATE_KEY'],
      [5, 'STRATA_IMPORT_DUPLICATE_KEY'],
    ])
  })

  it('rejects duplicates of keys loaded by earlier batches (probing starts at the first one)', async () => {
    const path = env.file(
      'xdups.csv',
      `${HEADER}\n1,a@x.io,,,,,,,,,\n2,b@x.io,,,,,,,,,\n3,c@x.io,,,,,,,,,\n1,d@x.io,,,,,,,,,\n5,e@x.io,,,,,,,,,\n2,f@x.io,,,,,,,,,\n7,g@x.io,,,,,,,,,\n`,
    )
    const r = await runImport(
      env.db,
      csvSpec(path, {
        target: { table: 'users', key: ['id'] },
        batch: { initial: 2, min: 1, max: 2 },
      }),
    )
    expect(r.counts).toEqual({ read: 7, loaded: 5, rejected: 2, skipped: 0 })
    const rejects = await listRejects(env.db, r.jobId)
    expect(rejects.map((x) => [x.line, x.code, x.message])).toEqual([
      [5, 'STRATA_IMPORT_DUPLICATE_KEY', 'a row with key (id) = (1) already exists'],
      [7, 'STRATA_IMPORT_DUPLICATE_KEY', 'a row with key (id) = (2) already exists'],
    ])
  })

  it('upsert: the last occurrence of a key in file order wins, within and across batches', async () => {
    await env.db.query(`INSERT INTO users (id, email, name) VALUES (1, 'one@x.io', 'old')`)
    const path = env.file(
      'upsert.csv',
      `${HEADER}\n1,one@x.io,first,,,,,,,,\n2,two@x.io,a,,,,,,,,\n1,one@x.io,second,,,,,,,,\n2,two@x.io,b,,,,,,,,\n1,one@x.io,third,,,,,,,,\n`,
    )
    for (const initial of [100, 2]) {
      const r = await runImport(
        env.db,
        csvSpec(path, {
          target: { table: 'users', mode: 'upsert', key: ['id'] },
          batch: { initial, min: 1 },
        }),
      )
      expect(r.counts).toEqual({ read: 5, loaded: 5, rejected: 0, skipped: 0 })
      expect(await env.rows('SELECT id::int, name FROM users ORDER BY id')).toEqual([
        { id: 1, name: 'third' },
        { id: 2, name: 'b' },
      ])
    }
  })

  it('skip-existing, update and delete modes count skipped rows', async () => {
    await env.db.query(`INSERT INTO users (id, email, name) VALUES (1, 'one@x.io', 'keep')`)
    const path = env.file(
      'modes.csv',
      `${HEADER}\n1,one@x.io,new,,,,,,,,\n2,two@x.io,two,,,,,,,,\n`,
    )
    const skip = await runImport(
      env.db,
      csvSpec(path, { target: { table: 'users', mode: 'skip-existing', key: ['id'] } }),
    )
    expect(skip.counts).toEqual({ read: 2, loaded: 1, rejected: 0, skipped: 1 })
    expect(await env.rows('SELECT id::int, name FROM users ORDER BY id')).toEqual([
      { id: 1, name: 'keep' },
      { id: 2, name: 'two' },
    ])
    await env.db.query('DELETE FROM users WHERE id = 2')
    const upd = await runImport(
      env.db,
      csvSpec(path, { target: { table: 'users', mode: 'update', key: ['id'] } }),
    )
    expect(upd.counts).toEqual({ read: 2, loaded: 1, rejected: 0, skipped: 1 })
    expect(await env.rows('SELECT id::int, name FROM users ORDER BY id')).toEqual([
      { id: 1, name: 'new' },
    ])
    const del = await runImport(
      env.db,
      csvSpec(path, { target: { table: 'users', mode: 'delete', key: ['id'] } }),
    )
    expect(del.counts).toEqual({ read: 2, loaded: 1, rejected: 0, skipped: 1 })
    expect(await env.rows('SELECT id FROM users')).toEqual([])
  })

  it('archive writes the deleted rows to a file; purge replaces the table', async () => {
    await env.db.query(
      `INSERT INTO users (id, email, name) VALUES (1, 'one@x.io', 'a'), (2, 'two@x.io', 'b'), (3, 'three@x.io', 'c')`,
    )
    const archiveFile = env.file('archive.ndjson', '')
    const keys = env.file('keys.csv', `${HEADER}\n2,two@x.io,,,,,,,,,\n9,nine@x.io,,,,,,,,,\n`)
    const arch = await runImport(
      env.db,
      csvSpec(keys, { target: { table: 'users', mode: 'archive', key: ['id'], archiveFile } }),
    )
    expect(arch.counts).toEqual({ read: 2, loaded: 1, rejected: 0, skipped: 1 })
    const archived = readFileSync(archiveFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(archived).toMatchObject([{ id: 2, email: 'two@x.io', name: 'b' }])
    expect(
      (await env.rows<{ id: string }>('SELECT id FROM users ORDER BY id')).map((r) => Number(r.id)),
    ).toEqual([1, 3])
    const purge = await runImport(
      env.db,
      csvSpec(keys, { target: { table: 'users', mode: 'purge' } }),
    )
    expect(purge.counts.loaded).toBe(2)
    expect(
      (await env.rows<{ id: string }>('SELECT id FROM users ORDER BY id')).map((r) => Number(r.id)),
    ).toEqual([2, 9])
  })

  it('custom transform functions receive the value and the row', async () => {
    const path = env.file('fn.csv', `${HEADER}\n1,a@x.io,ann,,,,,,,,\n`)
    await runImport(env.db, {
      ...csvSpec(path),
      columns: {
        ...columns,
        name: {
          from: 'name',
          transform: (v: string | null, row: Record<string, unknown>) => `${v}#${String(row.id)}`,
        },
      },
    })
    expect(await env.rows('SELECT name FROM users')).toEqual([{ name: 'ann#1' }])
  })

  it('checks identifiers against the catalog', async () => {
    const path = env.file('x.csv', `${HEADER}\n`)
    await expect(
      runImport(env.db, { ...csvSpec(path), target: { table: 'users"; DROP TABLE users; --' } }),
    ).rejects.toMatchObject({
      code: 'STRATA_IMPORT_UNKNOWN_TABLE',
    })
    await expect(
      runImport(env.db, { ...csvSpec(path), columns: { nope: {} } }),
    ).rejects.toMatchObject({
      code: 'STRATA_IMPORT_UNKNOWN_COLUMN',
    })
    await expect(
      runImport(env.db, {
        ...csvSpec(path),
        columns: { org_id: { lookup: { table: 'orgs', column: 'code', returns: 'nope' } } },
      }),
    ).rejects.toMatchObject({
      code: 'STRATA_IMPORT_UNKNOWN_COLUMN',
      message: expect.stringContaining('lookup.returns'),
    })
    await expect(
      runImport(env.db, {
        ...csvSpec(path),
        target: { table: 'users', mode: 'upsert', key: ['name'] },
        columns: { name: {} },
      }),
    ).rejects.toSatisfy((e: unknown) => importErrors.is(e, 'STRATA_IMPORT_NO_UNIQUE_KEY'))
  })
})

describe('error threshold', () => {
  // 10 rows, maxErrorRate 0.2: 2 bad rows (exactly at the threshold) completes, 3 pauses.
  function file(bad: number) {
    const lines = [HEADER]
    for (let i = 1; i <= 10; i++) lines.push(`${i},${i <= bad ? 'bad' : `u${i}@x.io`},,,,,,,,,`)
    return env.file(`threshold-${bad}.csv`, lines.join('\n') + '\n')
  }

  it('completes at exactly maxErrorRate (one row below the pause)', async () => {
    const r = await runImport(env.db, csvSpec(file(2), { errors: { maxErrorRate: 0.2 } }))
    expect(r.status).toBe('completed')
    expect(r.counts).toEqual({ read: 10, loaded: 8, rejected: 2, skipped: 0 })
  })

  it('pauses one row above it, with a clear reason, and resumes with a higher threshold', async () => {
    const r = await runImport(env.db, csvSpec(file(3), { errors: { maxErrorRate: 0.2 } }))
    expect(r.status).toBe('paused')
    expect(r.reason).toMatch(
      /error rate 30\.00% \(3 of 10 rows rejected\) is above maxErrorRate 20\.00%/,
    )
    const job = await getImportJob(env.db, r.jobId)
    expect(job.status).toBe('paused')
    expect(job.counts).toEqual({ read: 10, loaded: 7, rejected: 3, skipped: 0 })
  })
})

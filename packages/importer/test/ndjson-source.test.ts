import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { listRejects, runImport } from '@strata/importer'
import { importerTestEnv, type ImporterTestEnv } from './support/importer-db.js'

let env: ImporterTestEnv
beforeAll(async () => {
  env = await importerTestEnv(
    'impnd',
    `CREATE TABLE ev (id int PRIMARY KEY, kind text, props jsonb, ok boolean)`,
  )
})
afterAll(async () => env?.close())
beforeEach(async () => {
  await env.db.query('TRUNCATE ev')
})

const spec = (path: string, source: Record<string, unknown> = {}) => ({
  source: { format: 'ndjson', path, ...source },
  target: { table: 'ev' },
  columns: {
    id: { type: 'int', required: true },
    kind: {},
    props: { type: 'json' },
    ok: { type: 'bool' },
  },
  errors: { maxErrorRate: 1 },
})

describe('NDJSON source', () => {
  it('skips blank lines, reads a partial last line, keeps JSON values and line numbers', async () => {
    const path = env.file(
      'a.ndjson',
      '{"id":1,"kind":"a","props":{"x":[1,2]},"ok":true}\n\n   \r\n{"id":2,"kind":"b","props":null,"ok":false}\r\n{"id":3,"kind":"c"}',
    )
    const r = await runImport(env.db, spec(path))
    expect(r.counts).toEqual({ read: 3, loaded: 3, rejected: 0, skipped: 0 })
    expect(await env.rows('SELECT * FROM ev ORDER BY id')).toEqual([
      { id: 1, kind: 'a', props: { x: [1, 2] }, ok: true },
      { id: 2, kind: 'b', props: null, ok: false },
      { id: 3, kind: 'c', props: null, ok: null },
    ])
  })

  it('rejects invalid JSON, non-objects, a truncated last line and over-long lines', async () => {
    const long = `{"id":9,"kind":"${'x'.repeat(300)}"}`
    const path = env.file('b.ndjson', `{"id":1}\n{"id":2,\n[1,2]\n${long}\n{"id":5}\n{"id":6,"ki`)
    const r = await runImport(env.db, spec(path, { maxLineBytes: 200 }))
    expect(r.counts).toEqual({ read: 6, loaded: 2, rejected: 4, skipped: 0 })
    const rejects = await listRejects(env.db, r.jobId)
    expect(rejects.map((x) => [x.line, x.code])).toEqual([
      [2, 'STRATA_IMPORT_PARSE_ERROR'],
      [3, 'STRATA_IMPORT_PARSE_ERROR'],
      [4, 'STRATA_IMPORT_LINE_TOO_LONG'],
      [6, 'STRATA_IMPORT_PARSE_ERROR'],
    ])
  })

  it('reads gzip NDJSON', async () => {
    const path = env.file('c.ndjson.gz', gzipSync('{"id":1}\n{"id":2}\n'))
    const r = await runImport(env.db, spec(path))
    expect(r.counts.loaded).toBe(2)
  })
})

describe('Postgres cursor source', () => {
  it('moves rows db-to-db through a cursor', async () => {
    await env.db.query(`CREATE TABLE IF NOT EXISTS legacy (n int, label text)`)
    await env.db.query(`INSERT INTO legacy SELECT g, 'L' || g FROM generate_series(1, 120) g`)
    const r = await runImport(env.db, {
      source: {
        format: 'postgres',
        query: 'SELECT n AS id, label AS kind FROM legacy WHERE n > $1 ORDER BY n',
        params: [20],
      },
      target: { table: 'ev' },
      columns: { id: { type: 'int' }, kind: {} },
      batch: { initial: 30, min: 10 },
    })
    expect(r.counts).toEqual({ read: 100, loaded: 100, rejected: 0, skipped: 0 })
    expect(await env.rows('SELECT min(id), max(id), count(*)::int AS n FROM ev')).toEqual([
      { min: 21, max: 120, n: 100 },
    ])
  })
})

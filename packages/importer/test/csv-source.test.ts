import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { listRejects, runImport } from '@strata/importer'
import { importerTestEnv, type ImporterTestEnv } from './support/importer-db.js'

let env: ImporterTestEnv
beforeAll(async () => {
  env = await importerTestEnv(
    'impcsv',
    `CREATE TABLE people (id int PRIMARY KEY, name text, note text)`,
  )
})
afterAll(async () => env?.close())

const spec = (path: string, source: Record<string, unknown> = {}) => ({
  source: { format: 'csv', path, ...source },
  target: { table: 'people' },
  columns: {
    id: { from: 'id', type: 'int', required: true },
    name: { from: 'name' },
    note: { from: 'note' },
  },
})

async function load(name: string, content: string | Buffer, source: Record<string, unknown> = {}) {
  await env.db.query('TRUNCATE people')
  const path = env.file(name, content)
  const result = await runImport(env.db, spec(path, source))
  const rows = await env.rows<{ id: number; name: string | null; note: string | null }>(
    'SELECT * FROM people ORDER BY id',
  )
  return { result, rows }
}

describe('CSV source quirks', () => {
  it('handles BOM, CRLF, quoted newlines, escaped quotes and empty cells as NULL', async () => {
    const csv = '\ufeffid,name,note\r\n1,"Ann ""A"" Lee","line1\r\nline2"\r\n2,,x\r\n3,"",\r\n'
    const { result, rows } = await load('quirks.csv', csv)
    expect(result.status).toBe('completed')
    expect(result.counts).toEqual({ read: 3, loaded: 3, rejected: 0, skipped: 0 })
    expect(rows).toEqual([
      { id: 1, name: 'Ann "A" Lee', note: 'line1\r\nline2' },
      { id: 2, name: null, note: 'x' },
      { id: 3, name: null, note: null },
    ])
  })

  it('honours delimiter, quote and escape options', async () => {
    const csv = "id;name;note\n1;'a;b';'it\\'s'\n"
    const { rows } = await load('semi.csv', csv, { delimiter: ';', quote: "'", escape: '\\' })
    expect(rows).toEqual([{ id: 1, name: 'a;b', note: "it's" }])
  })

  it('decodes latin1', async () => {
    const buf = Buffer.from('id,name,note\n1,José Müller,ß\n', 'latin1')
    const { rows } = await load('latin1.csv', buf, { encoding: 'latin1' })
    expect(rows[0]).toEqual({ id: 1, name: 'José Müller', note: 'ß' })
  })

  it('reads gzip input detected by magic bytes (and by option)', async () => {
    const gz = gzipSync(Buffer.from('id,name,note\n1,a,b\n2,c,d\n'))
    const byMagic = await load('data.bin', gz)
    expect(byMagic.rows.map((r) => r.id)).toEqual([1, 2])
    const byOption = await load('data2.bin', gz, { gzip: true })
    expect(byOption.rows.map((r) => r.id)).toEqual([1, 2])
  })

  it('skips blank lines and reports the physical line where a record starts', async () => {
    const csv = 'id,name,note\n1,"multi\nline",x\n\nbad,a,b\n3,a\n4,a,b\n'
    const rejectFile = env.file('lines.rejects.csv', '')
    await env.db.query('TRUNCATE people')
    const path = env.file('lines.csv', csv)
    const result = await runImport(env.db, {
      ...spec(path),
      errors: { rejectFile, maxErrorRate: 1 },
    })
    expect(result.counts).toEqual({ read: 4, loaded: 2, rejected: 2, skipped: 0 })
    const { readFileSync } = await import('node:fs')
    const lines = readFileSync(rejectFile, 'utf8').trim().split('\n')
    expect(lines[0]).toBe('line,column,code,message,id,name,note')
    expect(lines[1]).toMatch(/^5,id,STRATA_IMPORT_INVALID_VALUE,/)
    expect(lines[2]).toBe(`6,,STRATA_IMPORT_COLUMN_COUNT,"expected 3 fields, got 2",3,a`)
  })

  it('keeps stray quotes as characters and rejects an unclosed quote with its line', async () => {
    await env.db.query('TRUNCATE people')
    const path = env.file(
      'quotes.csv',
      'id,name,note\n1,a"b,"x"y\n2,ok,ok\n3,"never closed,z\n4,q,q\n',
    )
    const result = await runImport(env.db, { ...spec(path), errors: { maxErrorRate: 1 } })
    expect(result.counts).toEqual({ read: 3, loaded: 2, rejected: 1, skipped: 0 })
    expect(await env.rows('SELECT id, name, note FROM people ORDER BY id')).toEqual([
      { id: 1, name: 'a"b', note: '"x"y' },
      { id: 2, name: 'ok', note: 'ok' },
    ])
    const [reject] = await listRejects(env.db, result.jobId)
    expect(reject).toMatchObject({ line: 4, code: 'STRATA_IMPORT_PARSE_ERROR' })
  })

  it('reads a last line without a trailing newline', async () => {
    const { rows } = await load('nolf.csv', 'id,name,note\n1,a,b\n2,c,d')
    expect(rows.map((r) => r.id)).toEqual([1, 2])
  })
})

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { listRejects, runImport } from '@strata/importer'
import { StrictUtf8Decoder, firstInvalidUtf8 } from '../src/sources/utf8.js'
import { importerTestEnv, type ImporterTestEnv } from './support/importer-db.js'

let env: ImporterTestEnv
beforeAll(async () => {
  env = await importerTestEnv('imputf8', `CREATE TABLE people (id int PRIMARY KEY, name text)`)
})
afterAll(async () => env?.close())

const csvSpec = (path: string, source: Record<string, unknown> = {}, rejectFile?: string) => ({
  source: { format: 'csv', path, ...source },
  target: { table: 'people' },
  columns: { id: { type: 'int', required: true }, name: {} },
  ...(rejectFile ? { errors: { rejectFile, maxErrorRate: 0.5 } } : {}),
})

async function names(): Promise<Map<number, string>> {
  const rows = await env.rows<{ id: number; name: string }>('SELECT * FROM people ORDER BY id')
  return new Map(rows.map((r) => [r.id, r.name]))
}

const latin1E = Buffer.from([0xe9]) // é in latin1: not UTF-8 on its own
const bytes = (...parts: (string | Buffer)[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)))

describe('StrictUtf8Decoder', () => {
  it('never rejects a character cut by a read boundary', () => {
    const text = 'a€b😀c\u00e9d\ufffd'
    const all = Buffer.from(text, 'utf8')
    for (let i = 0; i <= all.length; i++)
      for (let j = i; j <= all.length; j++) {
        const d = new StrictUtf8Decoder()
        const out =
          d.write(all.subarray(0, i)) + d.write(all.subarray(i, j)) + d.write(all.subarray(j))
        expect(out + d.end()).toBe(text)
        expect(d.sawInvalid).toBe(false)
      }
  })

  it('keeps invalid bytes visible, also cut ones at the end', () => {
    const d = new StrictUtf8Decoder()
    const out = d.write(bytes('x', latin1E, 'y', Buffer.from([0xe2, 0x82]))) + d.end()
    expect(d.sawInvalid).toBe(true)
    expect(out).toBe('x\udce9y\udce2\udc82')
    expect(firstInvalidUtf8(bytes('ab', latin1E))).toBe(2)
    expect(firstInvalidUtf8(bytes('ab€'))).toBe(-1)
    expect(firstInvalidUtf8(Buffer.from([0xed, 0xa0, 0x80]))).toBe(0) // a UTF-16 surrogate
  })
})

describe('UTF-8 sources with bytes that are not UTF-8', () => {
  const badCsv = bytes(
    'id,name\n1,Ann\n2,Jos',
    latin1E,
    '\n3,"Zoë ""Z"""\n4,Bad ',
    latin1E,
    ' twice ',
    latin1E,
    '\n5,ok \ufffd kept\n',
  )

  it.each([false, true])(
    'rejects each such CSV row with its line and reason, loads the rest (parse worker: %s)',
    async (parseWorker) => {
      await env.db.query('TRUNCATE people')
      const path = env.file('latin1-in-utf8.csv', badCsv)
      const rejectFile = join(env.dir, `rejects-${parseWorker}.csv`)
      const r = await runImport(env.db, csvSpec(path, {}, rejectFile), { parseWorker })
      expect(r.status).toBe('completed')
      expect(r.counts).toEqual({ read: 5, loaded: 3, rejected: 2, skipped: 0 })
      expect(await names()).toEqual(
        new Map([
          [1, 'Ann'],
          [3, 'Zoë "Z"'],
          [5, 'ok \ufffd kept'], // a real U+FFFD in the file is valid UTF-8
        ]),
      )
      const rejects = await listRejects(env.db, r.jobId)
      expect(rejects.map((x) => [x.line, x.code])).toEqual([
        [3, 'STRATA_IMPORT_PARSE_ERROR'],
        [5, 'STRATA_IMPORT_PARSE_ERROR'],
      ])
      expect(rejects[0]!.message).toBe(
        "invalid UTF-8 at byte offset 3 of field 2 (name) on line 3: byte 0xE9; save the file as UTF-8, or set source.encoding to 'latin1'",
      )
      expect(rejects[1]!.message).toMatch(
        /^invalid UTF-8 at byte offset 4 of field 2 \(name\) on line 5:/,
      )
      expect(rejects[0]!.fields).toEqual(['2', 'Jos\ufffd'])
      expect(readFileSync(rejectFile, 'utf8')).toContain('invalid UTF-8 at byte offset 3')
    },
  )

  it('reads the same bytes as latin1 when told so', async () => {
    await env.db.query('TRUNCATE people')
    const path = env.file('latin1.csv', bytes('id,name\n1,Jos', latin1E, '\n'))
    const r = await runImport(env.db, csvSpec(path, { encoding: 'latin1' }))
    expect(r.counts.loaded).toBe(1)
    expect(await names()).toEqual(new Map([[1, 'José']]))
  })

  it('loads a multi-byte character cut by the 1 MiB read boundary (plain and gzip)', async () => {
    // Row 2's '€' (3 bytes) starts one byte before the first read ends.
    const head = 'id,name\n1,'
    const pad = 'p'.repeat((1 << 20) - 1 - head.length - '\n2,'.length)
    const content = bytes(head, pad, '\n2,€uro\n3,snow ☃\n')
    expect(content.indexOf(Buffer.from('€'))).toBe((1 << 20) - 1)
    for (const [name, data] of [
      ['boundary.csv', content],
      ['boundary.csv.gz', gzipSync(content)],
    ] as const) {
      await env.db.query('TRUNCATE people')
      const r = await runImport(env.db, csvSpec(env.file(name, data)))
      expect(r.counts, name).toEqual({ read: 3, loaded: 3, rejected: 0, skipped: 0 })
      const got = await names()
      expect(got.get(2)).toBe('€uro')
      expect(got.get(3)).toBe('snow ☃')
    }
  })

  it('rejects such NDJSON lines with the byte offset in the line', async () => {
    await env.db.query('TRUNCATE people')
    const path = env.file(
      'bad.ndjson',
      bytes('{"id":1,"name":"Ann"}\n{"id":2,"name":"Jos', latin1E, '"}\n{"id":3,"name":"Zoë"}\n'),
    )
    const r = await runImport(env.db, {
      source: { format: 'ndjson', path },
      target: { table: 'people' },
      columns: { id: { type: 'int', required: true }, name: {} },
      errors: { maxErrorRate: 0.5 },
    })
    expect(r.counts).toEqual({ read: 3, loaded: 2, rejected: 1, skipped: 0 })
    expect(await names()).toEqual(
      new Map([
        [1, 'Ann'],
        [3, 'Zoë'],
      ]),
    )
    const [rej] = await listRejects(env.db, r.jobId)
    expect(rej).toMatchObject({ line: 2, code: 'STRATA_IMPORT_PARSE_ERROR' })
    expect(rej!.message).toBe(
      'invalid UTF-8 at byte offset 19 of line 2: byte 0xE9; NDJSON must be UTF-8',
    )
  })
})

// Property-based fuzzing of the import API with fast-check, against real PostgreSQL:
// POST /v1/imports with valid specs mutated at random places (wrong types, hostile text, unknown
// and prototype keys, paths outside the import dir, bad regexes, zones and formats), as JSON,
// as an upload's `?spec=` and as multipart; GET /v1/imports with random limit, cursor and
// status; the job routes with random ids. For every request:
//   1. no 5xx, and every refusal in the {"error":{"code":"STRATA_…","message":…}} envelope;
//   2. handled within timeBoundMs (250 ms up to 16 KB of decompressed body, plus 2 ms per KB
//      above that, about 1.2 s at 500 KB).
// Seed and runs: see fuzzParams (FUZZ_SEED, FUZZ_RUNS).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { importerMigrations } from '@strata/importer'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testApp, type TestApp } from './support/test-app.js'
import {
  anyText,
  BAD_TEXT,
  Entries,
  expectSound,
  FUZZ_TIMEOUT_MS,
  fuzzParams,
  goodKey,
  injectWithinBound,
  jsonText,
  nested,
  printFuzzStats,
  RawJson,
  type JsonLike,
} from './fuzz-support.js'

const TOKEN = 'operator-token-for-import-fuzzing'
let fx: TestApp
let importDir: string
let outside: string
/** Ids of jobs the fuzzer created, for the job routes. */
const jobIds: string[] = []

beforeAll(async () => {
  importDir = mkdtempSync(join(tmpdir(), 'strata-fzimp-'))
  outside = mkdtempSync(join(tmpdir(), 'strata-fzimp-out-'))
  writeFileSync(join(outside, 'secret.csv'), 'id,email\n1,a@x.io\n')
  mkdirSync(join(importDir, 'in'))
  writeFileSync(join(importDir, 'in', 'people.csv'), 'id,email\n1,a@x.io\n2,bad\n3,c@x.io\n')
  writeFileSync(join(importDir, 'in', 'people.csv.gz'), gzipSync('id,email\n4,d@x.io\n'))
  writeFileSync(join(importDir, 'in', 'people.ndjson'), '{"id":5,"email":"e@x.io"}\n{"id":6}\n')
  symlinkSync(join(outside, 'secret.csv'), join(importDir, 'in', 'link.csv'))
  fx = await testApp('fzimports', {
    config: {
      adminToken: TOKEN,
      importDir,
      authFailureLimit: { max: 0, windowMs: 60_000 },
      rateLimits: { imports: false },
    },
    migrations: [importerMigrations],
    prepare: (d) =>
      d
        .query(
          `CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL, tags text[], born date);
           CREATE TABLE orgs (id int PRIMARY KEY, name text UNIQUE)`,
        )
        .then(() => {}),
  })
})
afterAll(async () => {
  printFuzzStats('fuzz-imports')
  await fx?.close()
  rmSync(importDir, { recursive: true, force: true })
  rmSync(outside, { recursive: true, force: true })
})

// --- specs --------------------------------------------------------------------------------------

type Json = JsonLike

/** Valid specs of each source format and target mode. */
const validSpec: fc.Arbitrary<Record<string, Json>> = fc
  .record({
    source: fc.oneof(
      fc.record(
        {
          format: fc.constant('csv'),
          path: fc.constantFrom('in/people.csv', 'in/people.csv.gz'),
          header: fc.constant(true),
          delimiter: fc.constantFrom(',', ';'),
          encoding: fc.constantFrom('utf8', 'latin1'),
          gzip: fc.constantFrom<Json[]>('auto', true, false),
        },
        { requiredKeys: ['format', 'path'] },
      ),
      fc.record({ format: fc.constant('ndjson'), path: fc.constant('in/people.ndjson') }),
      fc.record({
        format: fc.constant('postgres'),
        query: fc.constantFrom(
          "SELECT 7 AS id, 'g@x.io' AS email",
          "select g AS id, 'x' || g || '@x.io' AS email FROM generate_series(10, 12) g",
          'VALUES (8)',
        ),
      }),
    ),
    target: fc.oneof(
      fc.constant<Json>({ table: 'people' }),
      fc
        .constantFrom('upsert', 'skip-existing', 'update', 'delete')
        .map((mode): Json => ({ table: 'people', mode, key: ['id'] })),
    ),
    columns: fc.constant<Json>({
      id: { type: 'int', required: true },
      email: { type: 'email', transform: ['trim', 'lower'], default: 'none@x.io' },
    }),
    errors: fc.constant<Json>({ maxErrorRate: 1 }),
    batch: fc.constant<Json>({ initial: 100, min: 10, max: 1000 }),
  })
  .map((s) => s as Record<string, Json>)

/** Values to put anywhere in a spec: of every JSON type, hostile, and spec-shaped. */
const hostile: fc.Arbitrary<Json> = fc.oneof(
  anyText(),
  fc.constantFrom<Json>(...BAD_TEXT),
  fc.constantFrom<Json>(
    0,
    -1,
    1.5,
    2 ** 53,
    1e21,
    new RawJson('1e309'),
    new RawJson('-0'),
    true,
    null,
    [],
    {},
    [''],
    ['id', 'id'],
    ['nope'],
    nested(300),
    nested(100_000),
    new Entries([['__proto__', new Entries([['polluted', true]])]]),
    new Entries([['constructor', new Entries([['prototype', 1]])]]),
    // Spec-shaped values in the wrong place, or odd but plausible in the right one.
    { type: 'enum', values: ['a', 'b\u0000'] },
    { type: 'enum', values: ['\ud800'] },
    { type: 'timestamp', tz: 'Mars/Olympus', formats: ['YYYY-MM-DD'] },
    { type: 'date', formats: ['DD/MM/YYYY', 'YYYY\u0000'] },
    { regex: '(a+)+$', replace: '' },
    { regex: '[', replace: '' },
    { regex: 'a', flags: 'gx', replace: 'b' },
    { regex: 'a', replace: '\ud800' },
    { map: { a: 'b', 'c\u0000': null }, default: 'keep' },
    { map: { '\udfff': 'x' } },
    { table: 'orgs', column: 'name', returns: 'id' },
    { table: 'pg_authid', schema: 'pg_catalog', column: 'rolname', returns: 'oid' },
    { table: 'people"; DROP TABLE people; --', column: 'id', returns: 'id' },
    { format: 'csv', path: '../../../etc/passwd' },
    { format: 'csv', path: '/etc/passwd' },
    { format: 'csv', path: 'in/link.csv' },
    { format: 'csv', path: 'in/people.csv\u0000' },
    { format: 'csv', path: 'in/' },
    { format: 'csv', path: `in/${'x'.repeat(5000)}.csv` },
    { format: 'ndjson', path: 'in/people.ndjson', maxLineBytes: 0 },
    { format: 'postgres', query: 'DELETE FROM people RETURNING *' },
    { format: 'postgres', query: 'WITH d AS (DELETE FROM people RETURNING *) SELECT * FROM d' },
    { format: 'postgres', query: 'SELECT 1; DROP TABLE people' },
    { format: 'postgres', query: 'SELECT $1::int AS id', params: [new Entries([['a', 1]])] },
    { format: 'postgres', query: 'SELECT 1', url: 'postgres://nobody@127.0.0.1:1/x' },
    { format: 'postgres', query: 'select pg_sleep(0.01), 1 AS id' },
    { format: 'postgres', query: 'SELECT 1 AS id', params: ['\u0000'] },
    { table: 'people', schema: 'pg_catalog' },
    { table: 'people', mode: 'archive', key: ['id'], archiveFile: '../out.ndjson' },
    { table: 'people', mode: 'purge' },
    { table: 'PEOPLE' },
    { maxErrorRate: 2, rejectFile: '../../rejects.csv' },
    { maxErrorRate: 0, rejectFile: 'in/rejects\ud800.csv' },
    { initial: 1, min: 1, max: 1 },
    { initial: 2 ** 31, min: 1, max: 2 ** 53 },
    { tags: { type: 'json' }, born: { type: 'date', formats: ['YYYY'] } },
  ),
)

/** A place in a JSON value: the containers on the way and the key at the end. */
type Place = { parent: Record<string, Json> | Json[]; key: string | number }

function places(value: Json, out: Place[] = []): Place[] {
  if (Array.isArray(value))
    value.forEach((v, i) => {
      out.push({ parent: value, key: i })
      places(v, out)
    })
  else if (value !== null && typeof value === 'object' && !(value instanceof RawJson)) {
    if (value instanceof Entries) return out
    for (const [k, v] of Object.entries(value)) {
      out.push({ parent: value, key: k })
      places(v, out)
    }
  }
  return out
}

interface Mutation {
  op: 'replace' | 'delete' | 'add'
  at: number
  value: Json
  key: string
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom<Mutation['op'][]>('replace', 'replace', 'delete', 'add'),
  at: fc.nat(),
  value: hostile,
  key: fc.oneof(
    goodKey,
    fc.constantFrom('__proto__', 'constructor', 'prototype', 'workers', 'lookup', 'tz'),
    fc.constantFrom(...BAD_TEXT),
  ),
})

/**
 * A deep copy that keeps RawJson and Entries (structuredClone would turn them into plain
 * objects), so mutations never change the generators' shared constants.
 */
function cloneJson<T extends Json>(value: T): T {
  if (value instanceof RawJson) return value
  if (value instanceof Entries)
    return new Entries(value.entries.map(([k, v]) => [k, cloneJson(v)])) as T
  if (Array.isArray(value)) return value.map(cloneJson) as T
  if (value !== null && typeof value === 'object') {
    const out: Record<string, Json> = {}
    for (const [k, v] of Object.entries(value))
      Object.defineProperty(out, k, {
        value: cloneJson(v),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    return out as T
  }
  return value
}

/** The spec with the mutations applied, in order (each on the spec as it then is). */
function mutate(spec: Record<string, Json>, ms: Mutation[]): Record<string, Json> {
  const copy = cloneJson(spec)
  for (const mut of ms) {
    const m = { ...mut, value: cloneJson(mut.value) }
    const all = places(copy)
    if (all.length === 0) break
    const { parent, key } = all[m.at % all.length]!
    if (Array.isArray(parent)) {
      if (m.op === 'delete') parent.splice(key as number, 1)
      else if (m.op === 'add') parent.push(m.value)
      else parent[key as number] = m.value
    } else if (m.op === 'delete') delete parent[key as string]
    else if (m.op === 'add') {
      const target = parent[key as string]
      if (
        target &&
        typeof target === 'object' &&
        !Array.isArray(target) &&
        !(target instanceof RawJson) &&
        !(target instanceof Entries)
      )
        Object.defineProperty(target, m.key, {
          value: m.value,
          enumerable: true,
          writable: true,
          configurable: true,
        })
      else parent[key as string] = m.value
    } else parent[key as string] = m.value
  }
  return copy
}

const mutatedSpec = fc
  .tuple(validSpec, fc.array(mutation, { maxLength: 3 }))
  .map(([s, ms]) => mutate(s, ms))

// --- requests -----------------------------------------------------------------------------------

const auth = fc.oneof(
  { weight: 8, arbitrary: fc.constant<string | undefined>(`Bearer ${TOKEN}`) },
  fc.constantFrom<(string | undefined)[]>(`Bearer ${TOKEN}x`, 'Bearer sk_w_nope', undefined),
)

/** The body of POST /v1/imports: `{"spec": …}` mostly, other shapes sometimes. */
const jsonBody: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: mutatedSpec.map((spec) => jsonText({ spec })) },
  mutatedSpec.map((spec) => jsonText(spec)),
  fc.tuple(mutatedSpec, hostile).map(([spec, extra]) => jsonText({ spec, extra })),
  hostile.map((spec) => jsonText(new Entries([['spec', spec]]))),
  fc.constantFrom(
    '',
    'null',
    '{"spec":null}',
    '{"spec":[]}',
    '{"spec":"{}"}',
    '{"spec":{"__proto__":{"source":{}}}}',
    '{"spec":',
    `{"spec":${'['.repeat(5000)}`,
  ),
)

/** A percent-encoded spec for an upload's `?spec=`: JSON of a mutated spec, or not JSON. */
const specParam: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: mutatedSpec.map((s) => encodeURIComponent(jsonText(s))) },
  fc.constantFrom('', '%7B', '%00', 'null', '%5B%5D', '%ED%A0%80', 'x'.repeat(3000)),
)

const UPLOAD_TYPES = [
  'text/csv',
  'application/x-ndjson',
  'application/gzip',
  'application/octet-stream',
]

const uploadBody: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constant(Buffer.from('id,email\n20,u@x.io\n21,\n')),
  fc.constant(gzipSync('id,email\n22,v@x.io\n')),
  fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
  fc.constant(Buffer.alloc(0)),
)

/** multipart/form-data with the given parts, in order. */
function multipart(
  parts: [string, string | { filename: string; type: string; content: Buffer }][],
) {
  const boundary = '----strata-fuzz-boundary'
  const chunks: Buffer[] = []
  for (const [name, v] of parts) {
    if (typeof v === 'string')
      chunks.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${v}\r\n`,
        ),
      )
    else
      chunks.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${v.filename}"\r\nContent-Type: ${v.type}\r\n\r\n`,
        ),
        v.content,
        Buffer.from('\r\n'),
      )
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return { payload: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` }
}

interface Request {
  method: string
  url: string
  headers: Record<string, string>
  payload?: string | Buffer
}

const createRequest: fc.Arbitrary<Request> = fc.oneof(
  {
    weight: 6,
    arbitrary: jsonBody.map((payload): Request => ({
      method: 'POST',
      url: '/v1/imports',
      headers: { 'content-type': 'application/json' },
      payload,
    })),
  },
  fc
    .tuple(specParam, fc.constantFrom(...UPLOAD_TYPES), uploadBody)
    .map(([spec, type, payload]): Request => ({
      method: 'POST',
      url: `/v1/imports?spec=${spec}`,
      headers: { 'content-type': type },
      payload,
    })),
  fc
    .tuple(
      mutatedSpec,
      uploadBody,
      fc.constantFrom('people.csv', 'x.ndjson', '../../x.csv', 'a\u0000.csv', '', 'p.gz'),
      fc.constantFrom<('spec-first' | 'file-first' | 'no-file' | 'two-specs' | 'other-part')[]>(
        'spec-first',
        'file-first',
        'no-file',
        'two-specs',
        'other-part',
      ),
    )
    .map(([spec, content, filename, shape]): Request => {
      const specText = jsonText(spec)
      const file = { filename, type: 'text/csv', content }
      const parts: [string, string | typeof file][] =
        shape === 'spec-first'
          ? [
              ['spec', specText],
              ['file', file],
            ]
          : shape === 'file-first'
            ? [
                ['file', file],
                ['spec', specText],
              ]
            : shape === 'no-file'
              ? [['spec', specText]]
              : shape === 'two-specs'
                ? [
                    ['spec', specText],
                    ['spec', specText],
                    ['file', file],
                  ]
                : [
                    ['spec', specText],
                    ['upload', file],
                  ]
      const { payload, type } = multipart(parts)
      return { method: 'POST', url: '/v1/imports', headers: { 'content-type': type }, payload }
    }),
)

const listValue = fc.oneof(
  fc.constantFrom('1', '50', '201', '0', '-1', '1.5', '1e3', 'NaN', '', '9'.repeat(400)),
  fc.constantFrom('queued', 'running,completed', 'failed, paused', 'done', 'QUEUED', ','),
  fc
    .tuple(
      fc.oneof(fc.constantFrom(0, 1, 2026, 9999), fc.integer({ min: 0, max: 9999 })),
      fc.integer({ min: 0, max: 13 }),
      fc.integer({ min: 0, max: 32 }),
      fc.oneof(fc.uuid(), fc.constantFrom('x', '')),
    )
    .map(([y, m, d, id]) => {
      const p = (n: number, w = 2) => String(n).padStart(w, '0')
      const ts = `${p(y, 4)}-${p(m)}-${p(d)}T00:00:00.000000Z`
      return Buffer.from(JSON.stringify([ts, id])).toString('base64url')
    }),
  // encodeURIComponent refuses a lone surrogate: send the bytes a lax encoder makes of one.
  anyText().map((s) => {
    try {
      return encodeURIComponent(s)
    } catch {
      return '%ED%A0%80'
    }
  }),
  fc.constantFrom('%00', '%ED%A0%80', '%', '%zz'),
)

const listRequest: fc.Arbitrary<Request> = fc
  .array(fc.tuple(fc.constantFrom('limit', 'cursor', 'status', 'other'), listValue), {
    maxLength: 4,
  })
  .map((pairs): Request => ({
    method: 'GET',
    url: `/v1/imports?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`,
    headers: {},
  }))

const jobRequest: fc.Arbitrary<Request> = fc
  .tuple(
    fc.oneof(
      fc
        .nat()
        .map(
          (i) => jobIds[i % Math.max(1, jobIds.length)] ?? '00000000-0000-0000-0000-000000000000',
        ),
      fc.uuid(),
      fc.constantFrom('x', '%00', '%ED%A0%80', 'x'.repeat(250), '..', '1', '-1'),
    ),
    fc.constantFrom(
      ['GET', ''],
      ['GET', '/rejects'],
      ['POST', '/pause'],
      ['POST', '/resume'],
      ['POST', '/cancel'],
      ['DELETE', ''],
    ),
  )
  .map(([id, [method, suffix]]): Request => ({
    method: method!,
    url: `/v1/imports/${id}${suffix}`,
    headers: {},
  }))

describe('import API', () => {
  it(
    'never a 5xx, refusals in the envelope, within the time bound',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof({ weight: 3, arbitrary: createRequest }, listRequest, jobRequest),
          auth,
          async (req, authorization) => {
            const headers = { ...req.headers, ...(authorization ? { authorization } : {}) }
            const what = `${req.method} ${req.url.slice(0, 300)} ${JSON.stringify(headers)} ${String(req.payload ?? '').slice(0, 400)}`
            const { res } = await injectWithinBound(
              fx.app,
              {
                method: req.method as 'GET',
                url: req.url,
                headers,
                ...(req.payload === undefined ? {} : { payload: req.payload }),
              },
              what,
            )
            expectSound(res, what)
            if (res.statusCode === 202) {
              const id = JSON.parse(res.body)?.job?.id
              if (typeof id === 'string' && !jobIds.includes(id)) jobIds.push(id)
            }
          },
        ),
        fuzzParams(300),
      )
      expect((await fx.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    },
  )
})

describe('regressions found by the fuzzer', () => {
  const base = {
    source: { format: 'postgres', query: "SELECT 7 AS id, 'g@x.io' AS email" },
    target: { table: 'people' },
    columns: { id: { type: 'int' }, email: { type: 'email' } },
  }
  const post = (spec: JsonLike) =>
    fx.app.inject({
      method: 'POST',
      url: '/v1/imports',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      payload: jsonText({ spec }),
    })

  // The spec is stored as jsonb, which refuses NUL and unpaired surrogates: such a spec passed
  // validation and failed the INSERT, a 500 STRATA_DB_QUERY_FAILED. Deep nesting (source.params
  // takes any JSON) overflowed the stack when the spec was copied for storage.
  it(
    'a spec PostgreSQL cannot store is a 400 STRATA_IMPORT_INVALID_SPEC naming the field',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      const cases: [JsonLike, string][] = [
        [
          { ...base, columns: { ...base.columns, email: { type: 'email', default: '\u0000' } } },
          'columns.email.default',
        ],
        [
          {
            ...base,
            columns: { ...base.columns, email: { type: 'enum', values: ['a', '\ud800'] } },
          },
          'columns.email.values[1]',
        ],
        [
          {
            ...base,
            columns: { ...base.columns, email: { transform: { regex: 'a', replace: 'b\udfff' } } },
          },
          'columns.email.transform.replace',
        ],
        [
          {
            ...base,
            columns: { ...base.columns, email: { transform: { map: { 'a\u0000': 'b' } } } },
          },
          'columns.email.transform.map',
        ],
        [{ ...base, source: { ...base.source, params: ['ok', '\u0000'] } }, 'source.params[1]'],
        [{ ...base, source: { ...base.source, params: [nested(100_000)] } }, 'source.params[0]'],
      ]
      for (const [spec, field] of cases) {
        const res = await post(spec)
        expect(res.statusCode, `${field}: ${res.body.slice(0, 300)}`).toBe(400)
        const error = res.json().error
        expect(error.code).toBe('STRATA_IMPORT_INVALID_SPEC')
        expect(error.message).toContain(field)
      }
    },
  )
})

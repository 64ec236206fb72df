// Property-based fuzzing of the ingestion routes (/v1/logins, /v1/activities,
// /v1/events/batch) with fast-check, against real PostgreSQL. For every generated request:
//   1. no 5xx, and every refusal in the {"error":{"code":"STRATA_…","message":…}} envelope;
//   2. handled within timeBoundMs (250 ms up to 16 KB of decompressed body, plus 2 ms per KB
//      above that, about 1.2 s at 500 KB);
//   3. in a batch mixing valid and invalid items, every valid item is stored exactly once and
//      every invalid one is listed in `rejected` with its index.
// Seed and runs: see fuzzParams (FUZZ_SEED, FUZZ_RUNS).
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventCase, explainBatch, render, renderBatch, type Kind } from './fuzz-events.js'
import {
  Entries,
  expectSound,
  FUZZ_TIMEOUT_MS,
  fuzzParams,
  injectWithinBound,
  jsonOf,
  jsonText,
  nested,
  printFuzzStats,
  type JsonLike,
} from './fuzz-support.js'
import { ADMIN_TOKEN, ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

let f: IngestFixture

beforeAll(async () => {
  // No rate limits and no failed-authentication limit: the fuzzer sends bad keys on purpose,
  // and its valid requests must still reach the routes.
  f = await ingestFixture('fzingest', { rateLimit: false }, undefined, {
    authFailureLimit: { max: 0, windowMs: 60_000 },
  })
})
afterAll(async () => {
  printFuzzStats('fuzz-ingest')
  await f?.close()
})

const ALL_KINDS: Kind[] = [
  'login',
  'activity',
  'track',
  'identify',
  'page',
  'screen',
  'group',
  'alias',
]

let seq = 0
const freshId = () => `fzi-${(seq++).toString(36)}-`

/** How many rows each message id has, over the three event tables of the project. */
async function storedCounts(ids: string[]): Promise<Map<string, number>> {
  const res = await f.db.query<{ id: string; n: number }>(
    `SELECT message_id AS id, count(*)::int AS n FROM (
       SELECT message_id FROM login_events WHERE project_id = $1 AND message_id = ANY($2::text[])
       UNION ALL
       SELECT message_id FROM activity_logs WHERE project_id = $1 AND message_id = ANY($2::text[])
       UNION ALL
       SELECT message_id FROM events WHERE project_id = $1 AND message_id = ANY($2::text[])
     ) t GROUP BY message_id`,
    [f.projectId, ids],
  )
  return new Map(res.rows.map((r) => [r.id, r.n]))
}

/** Checks that exactly the valid cases' ids are stored, once each. */
async function expectStored(
  rendered: { id: string | null; valid: boolean }[],
  what: string,
): Promise<void> {
  const ids = rendered.flatMap((r) => (r.id === null ? [] : [r.id]))
  if (ids.length === 0) return
  const stored = await storedCounts(ids)
  for (const r of rendered) {
    if (r.id === null) continue
    expect(stored.get(r.id) ?? 0, `${what}: rows of ${JSON.stringify(r.id)}`).toBe(r.valid ? 1 : 0)
  }
}

const write = () => ({ authorization: `Bearer ${f.writeKey}` })

describe('POST /v1/events/batch', () => {
  it(
    'valid items of a mixed batch are stored exactly once; invalid ones are rejected by index',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(eventCase(ALL_KINDS, 'batch'), { minLength: 1, maxLength: 20 }),
          fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 2 }),
          fc.boolean(),
          async (cases, repeats, withSentAt) => {
            const { items, expected } = renderBatch(cases, repeats, freshId)
            const envelope: [string, JsonLike][] = [['events', items.map((r) => r.value)]]
            // A batch-level sentAt of now keeps every valid timestamp in the window.
            if (withSentAt) envelope.push(['sentAt', new Date().toISOString()])
            const payload = jsonText(new Entries(envelope))
            const what = `batch of ${items.length}`
            const { res } = await injectWithinBound(
              f.app,
              {
                method: 'POST',
                url: '/v1/events/batch',
                headers: { ...write(), 'content-type': 'application/json' },
                payload,
              },
              what,
            )
            expectSound(res, what, { batchAnswer: true })
            const answer = jsonOf(res, what)
            const why = `${what} answered ${res.statusCode}:\n${explainBatch(items, answer)}`
            expect(res.statusCode, why).toBe(expected.accepted ? 202 : 400)
            expect(answer.accepted, why).toBe(expected.accepted)
            expect(answer.duplicates, why).toBe(expected.duplicates)
            expect(
              answer.rejected.map((r: { index: number }) => r.index),
              why,
            ).toEqual(expected.rejected)
            for (const r of answer.rejected)
              expect(r.error.code, why).toMatch(/^STRATA_(EVENT|BATCH)_[A-Z_]+$/)
            await expectStored(items, why)
          },
        ),
        fuzzParams(100),
      )
    },
  )
})

describe('concurrent batches', () => {
  // Group commit merges concurrent requests into one flush: a message id sent in several of
  // them at once is still stored once, acknowledged as accepted by one and as a duplicate by
  // the others.
  it(
    'sharing message ids: each id stored once, accepted once over all answers',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(eventCase(ALL_KINDS, 'batch', 30), { minLength: 1, maxLength: 10 }), {
            minLength: 2,
            maxLength: 4,
          }),
          fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat()), { minLength: 1, maxLength: 6 }),
          async (batches, shares) => {
            const rendered = batches.map((cases) => renderBatch(cases, [], freshId).items)
            // Copy valid items into other batches: [from batch, which valid item, to batch].
            for (const [from, which, to] of shares) {
              const source = rendered[from % rendered.length]!.filter((i) => i.valid)
              if (source.length === 0) continue
              rendered[to % rendered.length]!.push({
                ...source[which % source.length]!,
                repeats: -1,
              })
            }
            const answers = await Promise.all(
              rendered.map((items) =>
                injectWithinBound(
                  f.app,
                  {
                    method: 'POST',
                    url: '/v1/events/batch',
                    headers: { ...write(), 'content-type': 'application/json' },
                    payload: jsonText(new Entries([['events', items.map((i) => i.value)]])),
                  },
                  `concurrent batch of ${items.length}`,
                ),
              ),
            )
            const all = rendered.flat()
            const copies = all.filter((i) => i.valid).length
            const unique = new Set(all.filter((i) => i.valid).map((i) => i.id)).size
            let accepted = 0
            let duplicates = 0
            const why = rendered
              .map(
                (items, b) =>
                  `batch ${b}:\n${explainBatch(items, jsonOf(answers[b]!.res, 'batch'))}`,
              )
              .join('\n')
            answers.forEach(({ res }, b) => {
              expectSound(res, `batch ${b}`, { batchAnswer: true })
              const answer = jsonOf(res, `batch ${b}`)
              accepted += answer.accepted
              duplicates += answer.duplicates
              expect(
                answer.rejected.map((r: { index: number }) => r.index),
                why,
              ).toEqual(rendered[b]!.flatMap((item, i) => (item.valid ? [] : [i])))
            })
            expect(accepted, why).toBe(unique)
            expect(duplicates, why).toBe(copies - unique)
            await expectStored(all, why)
          },
        ),
        fuzzParams(25),
      )
    },
  )
})

describe('POST /v1/logins and /v1/activities', () => {
  it(
    'a valid event is stored once and answered 202 with its id; an invalid one is a 400 envelope',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          eventCase(['login', 'activity'], 'route'),
          fc.constantFrom('login', 'activity'),
          async (c, route) => {
            const { value, id } = render(c, freshId)
            const valid = c.valid && c.kind === route
            const what = `${route} ← ${c.kind} ${c.valid ? 'valid' : 'invalid'} (${c.why.join('; ')})`
            const { res } = await injectWithinBound(
              f.app,
              {
                method: 'POST',
                url: route === 'login' ? '/v1/logins' : '/v1/activities',
                headers: { ...write(), 'content-type': 'application/json' },
                payload: jsonText(value),
              },
              what,
            )
            expectSound(res, what)
            const why = `${what}: ${res.statusCode} ${res.body.slice(0, 300)}`
            expect(res.statusCode, why).toBe(valid ? 202 : 400)
            if (valid && id !== null) expect(jsonOf(res, what).messageId, why).toBe(id)
            await expectStored([{ id, valid }], why)
          },
        ),
        fuzzParams(100),
      )
    },
  )
})

// --- raw bodies, encodings, headers ------------------------------------------------------------

/** A small valid batch as JSON text. */
const batchText = fc
  .array(eventCase(ALL_KINDS, 'batch', 20), { minLength: 1, maxLength: 4 })
  .map((cases) => jsonText(new Entries([['events', cases.map((c) => render(c, freshId).value)]])))

const INVALID_UTF8 = [
  [0xc3, 0x28],
  [0xed, 0xa0, 0x80], // an encoded lone surrogate
  [0xc0, 0x80], // overlong NUL
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xff],
  [0x80],
  [0xf0, 0x9f, 0x98], // a truncated 4-byte character
].map((b) => Buffer.from(b))

const oneLogin = '{"type":"login","userId":"u","method":"m","success":true}'

const CONSTANT_BODIES: string[] = [
  '',
  ' ',
  '\n\t',
  'null',
  '[]',
  '"events"',
  '{}',
  '{"events":{}}',
  '{"events":null}',
  '{"events":[]}',
  '{"events":"[]"}',
  `{"__proto__":{"events":[]},"events":[${oneLogin}]}`,
  `{"constructor":{"prototype":{"polluted":true}},"events":[${oneLogin}]}`,
  `{"events":[${oneLogin}],"events":[]}`,
  `{"events":[NaN]}`,
  `{"events":[1e309]}`,
  `{"events":[${oneLogin.replace('"u"', '"u\\u0000"')}]}`,
  `{"events":[${Array.from({ length: 101 }, () => oneLogin).join(',')}]}`,
  `{"events":${jsonText(nested(127, []))}}`,
  `{"events":${jsonText(nested(200))}}`,
  `{"events":[${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}]}`,
  '['.repeat(100_000) + ']'.repeat(100_000),
  '{"events":' + '['.repeat(50_000),
  `{"events":[${oneLogin}]}`.repeat(3),
  `{"events":[{"type":"activity","userId":"u","action":"a","metadata":{"s":"${'x'.repeat(600_000)}"}}]}`,
]

const bodyText: fc.Arbitrary<Buffer> = fc.oneof(
  batchText.map((t) => Buffer.from(t)),
  fc.constantFrom(...CONSTANT_BODIES).map((t) => Buffer.from(t)),
  batchText.map((t) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(t)])),
  fc
    .tuple(batchText, fc.double({ min: 0, max: 1, noNaN: true }))
    .map(([t, p]) => Buffer.from(t).subarray(0, Math.floor(Buffer.byteLength(t) * p))),
  fc
    .tuple(batchText, fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(...INVALID_UTF8))
    .map(([t, p, bad]) => {
      const b = Buffer.from(t)
      const at = Math.floor(b.length * p)
      return Buffer.concat([b.subarray(0, at), bad, b.subarray(at)])
    }),
  fc
    .tuple(batchText, fc.constantFrom('x', ',', '}', ']', '\u0000', ' \n', '{}', '\uFEFF'))
    .map(([t, tail]) => Buffer.from(t + tail)),
  fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
)

// 2 MB of spaces in ~2 KB of gzip: past the body limit once decompressed.
const BOMB = gzipSync(Buffer.alloc(2_000_000, 0x20))

/** [Content-Encoding header, body encoded accordingly (or not, or corrupt)]. */
const encoded: fc.Arbitrary<[string | undefined, Buffer]> = fc
  .tuple(
    bodyText,
    fc.constantFrom(
      'none',
      'none',
      'none',
      'gzip',
      'x-gzip',
      'GZIP',
      'deflate',
      'deflate-raw',
      'br',
      'compress',
      'gzip, deflate',
      'identity',
      'empty',
      'gzip-corrupt',
      'gzip-truncated',
      'gzip-plain',
      'bomb',
    ),
    fc.nat(),
  )
  .map(([body, how, n]): [string | undefined, Buffer] => {
    switch (how) {
      case 'none':
        return [undefined, body]
      case 'gzip':
      case 'x-gzip':
      case 'GZIP':
        return [how, gzipSync(body)]
      case 'deflate':
        return ['deflate', deflateSync(body)]
      case 'deflate-raw':
        return ['deflate', deflateRawSync(body)]
      case 'br':
        return ['br', brotliCompressSync(body)]
      case 'compress':
        return ['compress', body]
      case 'gzip, deflate':
        return [how, deflateSync(gzipSync(body))]
      case 'identity':
        return ['identity', body]
      case 'empty':
        return ['', body]
      case 'gzip-corrupt': {
        const z = Buffer.from(gzipSync(body))
        const at = 10 + (n % Math.max(1, z.length - 10))
        z[at] = z[at]! ^ 0xff
        return ['gzip', z]
      }
      case 'gzip-truncated': {
        const z = gzipSync(body)
        return ['gzip', z.subarray(0, n % z.length)]
      }
      case 'gzip-plain':
        return ['gzip', body]
      default:
        return ['gzip', BOMB]
    }
  })

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json;charset=UTF-8;foo=bar',
  'text/plain',
  'text/plain;charset=UTF-8',
  'application/x-www-form-urlencoded',
  'application/json; charset=utf-16',
  'application/vnd.api+json',
  'application/csp-report',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  '',
  ';;',
  'application/json, text/plain',
  '*/*',
  undefined,
]

const authHeader = fc.constantFrom<(() => string | undefined)[]>(
  () => `bearer ${f.writeKey}`,
  () => `Basic ${Buffer.from(`${f.writeKey}:`).toString('base64')}`,
  () => `Bearer ${f.adminKey}`,
  () => `Bearer ${ADMIN_TOKEN}`,
  () => `Bearer ${f.writeKey}x`,
  () => 'Bearer ',
  () => 'Basic !!!',
  () => `Token ${f.writeKey}`,
  () => undefined,
)

describe('raw bodies, encodings and headers', () => {
  it(
    'never a 5xx, refusals in the envelope, within the time bound',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/v1/logins', '/v1/activities', '/v1/events/batch', '/v1/events/batch'),
          fc.oneof(
            { weight: 12, arbitrary: fc.constant('POST') },
            fc.constantFrom('PUT', 'GET', 'DELETE', 'PATCH', 'OPTIONS'),
          ),
          encoded,
          fc.oneof(
            { weight: 3, arbitrary: fc.constant('application/json') },
            fc.constantFrom(...CONTENT_TYPES),
          ),
          fc.oneof({ weight: 3, arbitrary: fc.constant(() => `Bearer ${f.writeKey}`) }, authHeader),
          async (url, method, [encoding, payload], type, auth) => {
            const headers: Record<string, string> = {}
            const authorization = auth()
            if (authorization !== undefined) headers.authorization = authorization
            if (type !== undefined) headers['content-type'] = type
            if (encoding !== undefined) headers['content-encoding'] = encoding
            const what = `${method} ${url} ${JSON.stringify(headers)} ${payload.length} bytes: ${JSON.stringify(payload.subarray(0, 120).toString('latin1'))}`
            const { res } = await injectWithinBound(f.app, { method, url, headers, payload }, what)
            expectSound(res, what, { batchAnswer: url === '/v1/events/batch' })
          },
        ),
        fuzzParams(400),
      )
      // Still alive and answering.
      expect((await f.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    },
  )
})

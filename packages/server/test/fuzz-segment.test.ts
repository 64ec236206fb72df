// Property-based fuzzing of the Segment-compatible routes (/v1/batch, /v1/track, /v1/identify,
// /v1/page, /v1/screen, /v1/group, /v1/alias) with fast-check, against real PostgreSQL: Segment-
// shaped messages, mutated, authenticated by Bearer, Basic `<key>:` or the body's writeKey.
//   1. no 5xx, and every refusal in the {"error":{"code":"STRATA_…","message":…}} envelope;
//   2. handled within timeBoundMs (250 ms up to 16 KB of decompressed body, plus 2 ms per KB
//      above that, about 1.2 s at 500 KB);
//   3. in a batch mixing valid and invalid messages, every valid one is stored exactly once and
//      every invalid one is listed in `rejected` with its index.
// Seed and runs: see fuzzParams (FUZZ_SEED, FUZZ_RUNS).
import { gzipSync } from 'node:zlib'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventCase, explainBatch, render, renderBatch, SEGMENT_KINDS } from './fuzz-events.js'
import {
  anyText,
  BAD_TEXT,
  Entries,
  expectSound,
  FUZZ_TIMEOUT_MS,
  fuzzParams,
  goodObject,
  injectWithinBound,
  jsonOf,
  jsonText,
  nested,
  printFuzzStats,
  RawJson,
  type JsonLike,
} from './fuzz-support.js'
import { ADMIN_TOKEN, ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

let f: IngestFixture

beforeAll(async () => {
  // No rate limits and no failed-authentication limit: the fuzzer sends bad keys on purpose,
  // and its valid requests must still reach the routes.
  // A low COPY threshold sends most batches down the writer's COPY path (fuzz-ingest's small
  // batches take the single-statement one).
  f = await ingestFixture(
    'fzsegment',
    { rateLimit: false, writer: { copyThreshold: 4 } },
    undefined,
    {
      authFailureLimit: { max: 0, windowMs: 60_000 },
    },
  )
})
afterAll(async () => {
  printFuzzStats('fuzz-segment')
  await f?.close()
})

let seq = 0
const freshId = () => `fzs-${(seq++).toString(36)}-`

/**
 * A body authenticated by its writeKey alone is read before its sender is known and held to
 * 64 KiB (plugins/ingest-body.ts); larger ones are refused whole with a 413.
 */
const UNAUTHENTICATED_LIMIT = 65_536
/** The app's body limit, decompressed bodies included. */
const BODY_LIMIT = 512_000

type AuthWay = 'bearer' | 'basic' | 'body'

/** Headers and body fields that carry the write key the way `way` says. */
function credentials(way: AuthWay): {
  headers: Record<string, string>
  body: [string, JsonLike][]
} {
  if (way === 'bearer') return { headers: { authorization: `Bearer ${f.writeKey}` }, body: [] }
  if (way === 'basic')
    return {
      headers: { authorization: `Basic ${Buffer.from(`${f.writeKey}:`).toString('base64')}` },
      body: [],
    }
  return { headers: {}, body: [['writeKey', f.writeKey]] }
}

async function storedCounts(ids: string[]): Promise<Map<string, number>> {
  const res = await f.db.query<{ id: string; n: number }>(
    `SELECT message_id AS id, count(*)::int AS n FROM events
     WHERE project_id = $1 AND message_id = ANY($2::text[]) GROUP BY message_id`,
    [f.projectId, ids],
  )
  return new Map(res.rows.map((r) => [r.id, r.n]))
}

async function expectStored(
  rendered: { id: string | null; valid: boolean }[],
  what: string,
): Promise<void> {
  const ids = rendered.flatMap((r) => (r.id === null ? [] : [r.id]))
  if (ids.length === 0) return
  const stored = await storedCounts(ids)
  for (const r of rendered)
    if (r.id !== null)
      expect(stored.get(r.id) ?? 0, `${what}: rows of ${JSON.stringify(r.id)}`).toBe(
        r.valid ? 1 : 0,
      )
}

const authWay = fc.constantFrom<AuthWay[]>('bearer', 'basic', 'body')

describe('POST /v1/batch', () => {
  it(
    'valid messages of a mixed batch are stored exactly once; invalid ones are rejected by index',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(eventCase(SEGMENT_KINDS, 'batch'), { minLength: 1, maxLength: 40 }),
          fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 3 }),
          authWay,
          fc.option(goodObject(2), { nil: undefined }),
          fc.boolean(),
          fc.boolean(),
          async (cases, repeats, way, context, withSentAt, gzip) => {
            const { items, expected } = renderBatch(cases, repeats, freshId)
            const { headers, body } = credentials(way)
            const envelope: [string, JsonLike][] = [['batch', items.map((r) => r.value)], ...body]
            // A valid batch-level context goes to the messages without one: validity unchanged.
            if (context) envelope.push(['context', context])
            if (withSentAt) envelope.push(['sentAt', new Date().toISOString()])
            const text = jsonText(new Entries(envelope))
            const bytes = Buffer.byteLength(text)
            const payload = gzip ? gzipSync(text) : text
            const what = `${way} batch of ${items.length}${gzip ? ', gzip' : ''}, ${bytes} bytes`
            const { res } = await injectWithinBound(
              f.app,
              {
                method: 'POST',
                url: '/v1/batch',
                headers: {
                  ...headers,
                  'content-type': 'application/json',
                  ...(gzip ? { 'content-encoding': 'gzip' } : {}),
                },
                payload,
              },
              what,
            )
            expectSound(res, what, { batchAnswer: true })
            const answer = jsonOf(res, what)
            // Decompressed, the text is what counts (gzip only makes the sent bytes fewer).
            if (bytes > (way === 'body' ? UNAUTHENTICATED_LIMIT : BODY_LIMIT)) {
              expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBe(413)
              await expectStored(
                items.map((r) => ({ ...r, valid: false })),
                what,
              )
              return
            }
            const stored = expected.accepted + expected.duplicates > 0
            const why = `${what} answered ${res.statusCode}:\n${explainBatch(items, answer)}`
            expect(res.statusCode, why).toBe(stored ? 200 : 400)
            expect(answer.success, why).toBe(stored)
            if (expected.rejected.length === 0) expect(answer, why).toEqual({ success: true })
            else {
              expect(answer.accepted, why).toBe(expected.accepted)
              expect(answer.duplicates, why).toBe(expected.duplicates)
              expect(
                answer.rejected.map((r: { index: number }) => r.index),
                why,
              ).toEqual(expected.rejected)
            }
            await expectStored(items, why)
          },
        ),
        fuzzParams(80),
      )
    },
  )
})

describe('POST /v1/<type>', () => {
  it(
    'a valid message is stored once and answered 200; an invalid one is a 400 envelope',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc
            .constantFrom(...SEGMENT_KINDS)
            .chain((kind) => fc.tuple(fc.constant(kind), eventCase([kind], 'route'))),
          authWay,
          async ([kind, c], way) => {
            const { value, id } = render(c, freshId)
            const { headers, body } = credentials(way)
            // The body's writeKey needs an object to sit in; a body that is none has no key.
            const payload =
              way === 'body' && value instanceof Entries
                ? jsonText(new Entries([...value.entries, ...body]))
                : jsonText(value)
            const authenticated = way !== 'body' || value instanceof Entries
            const what = `${way} /v1/${kind} ← ${c.valid ? 'valid' : 'invalid'} (${c.why.join('; ')})`
            const { res } = await injectWithinBound(
              f.app,
              {
                method: 'POST',
                url: `/v1/${kind}`,
                headers: { ...headers, 'content-type': 'application/json' },
                payload,
              },
              what,
            )
            expectSound(res, what)
            const why = `${what}: ${res.statusCode} ${res.body.slice(0, 300)}`
            const big = way === 'body' && Buffer.byteLength(payload) > UNAUTHENTICATED_LIMIT
            if (!authenticated) expect(res.statusCode, why).toBe(401)
            else if (big) expect(res.statusCode, why).toBe(413)
            else {
              expect(res.statusCode, why).toBe(c.valid ? 200 : 400)
              if (c.valid) expect(jsonOf(res, what), why).toEqual({ success: true })
            }
            await expectStored([{ id, valid: c.valid && authenticated && !big }], why)
          },
        ),
        fuzzParams(100),
      )
    },
  )
})

describe('the largest batches', () => {
  // Up to the 5,000 messages a Segment batch may hold, in under 500 KB: the most validation,
  // COPY and answer (one rejected entry per invalid message) one body can ask for.
  it(
    'are handled within the time bound, valid messages stored',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1000, max: 5000 }),
          fc.integer({ min: 0, max: 100 }),
          async (n, invalidPercent) => {
            const base = freshId()
            // Padding brings the body to about 490 KB whatever the count.
            const pad = 'p'.repeat(Math.max(0, Math.floor(490_000 / n) - 110))
            const batch = Array.from({ length: n }, (_, i) =>
              (i * 37) % 100 < invalidPercent
                ? `{"type":"track","userId":"u${i}","messageId":"${base}${i}","properties":{"p":"${pad}"}}`
                : `{"type":"track","event":"e","userId":"u${i}","messageId":"${base}${i}","properties":{"p":"${pad}"}}`,
            )
            const payload = `{"batch":[${batch.join(',')}]}`
            const valid = batch.filter((m) => m.includes('"event"')).length
            const what = `${n} messages, ${invalidPercent}% invalid, ${payload.length} bytes`
            const { res } = await injectWithinBound(
              f.app,
              {
                method: 'POST',
                url: '/v1/batch',
                headers: {
                  authorization: `Bearer ${f.writeKey}`,
                  'content-type': 'application/json',
                },
                payload,
              },
              what,
            )
            expectSound(res, what, { batchAnswer: true })
            expect(res.statusCode, what).toBe(valid ? 200 : 400)
            const stored = await f.db.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM events WHERE project_id = $1 AND message_id LIKE $2`,
              [f.projectId, `${base}%`],
            )
            expect(stored.rows[0]!.n, what).toBe(valid)
          },
        ),
        fuzzParams(8),
      )
    },
  )
})

// --- hostile envelopes and credentials ---------------------------------------------------------

/** Authorization headers: the write key in every spelling, other keys, junk. */
const authorization = fc.constantFrom<(() => string | undefined)[]>(
  () => `Bearer ${f.writeKey}`,
  () => `Basic ${Buffer.from(`${f.writeKey}:`).toString('base64')}`,
  () => `Basic ${Buffer.from(f.writeKey).toString('base64')}`,
  () => `Basic ${Buffer.from(`${f.writeKey}:password`).toString('base64')}`,
  () => `basic ${Buffer.from(`${f.writeKey}:`).toString('base64url')}`,
  () => `Basic ${Buffer.from(`:${f.writeKey}`).toString('base64')}`,
  () => `Basic ${Buffer.from(`${f.adminKey}:`).toString('base64')}`,
  () => `Basic ${Buffer.from(`${ADMIN_TOKEN}:`).toString('base64')}`,
  () => `Basic ${Buffer.from('\u0000:').toString('base64')}`,
  () => `Basic ${Buffer.from([0xed, 0xa0, 0x80, 0x3a]).toString('base64')}`,
  () => 'Basic',
  () => 'Basic ====',
  () => 'Basic %%%',
  () => `Bearer  ${f.writeKey} `,
  () => `Bearer ${f.writeKey.toUpperCase()}`,
  () => `Digest ${f.writeKey}`,
  () => 'Bearer',
  () => undefined,
  () => undefined,
)

/** Body writeKey values: the key, other keys, wrong types, hostile text. */
const bodyKey: fc.Arbitrary<() => JsonLike | undefined> = fc.oneof(
  fc.constantFrom<(() => JsonLike | undefined)[]>(
    () => f.writeKey,
    () => f.writeKey,
    () => f.adminKey,
    () => ADMIN_TOKEN,
    () => `${f.writeKey}\u0000`,
    () => [f.writeKey],
    () => new Entries([['key', f.writeKey]]),
    () => 42,
    () => null,
    () => '',
    () => undefined,
  ),
  anyText().map((s) => () => s),
)

/** Values of the batch-level fields: of the right shape or not, hostile, huge. */
const envelopeValue: fc.Arbitrary<JsonLike> = fc.oneof(
  goodObject(2),
  anyText(),
  fc.constantFrom<JsonLike>(
    null,
    true,
    0,
    [],
    new RawJson('1e309'),
    new RawJson('-0'),
    nested(40),
    nested(200),
    new Entries([['__proto__', new Entries([['admin', true]])]]),
    new Entries([['constructor', 1]]),
    new Entries([['ip', 'fe80::1%eth0']]),
    new Entries([['k', BAD_TEXT[0]!]]),
    new Entries([['big', 'x'.repeat(400_000)]]),
  ),
)

const batchItems: fc.Arbitrary<JsonLike> = fc.oneof(
  fc
    .array(eventCase(SEGMENT_KINDS, 'batch', 30), { maxLength: 6 })
    .map((cases) => cases.map((c) => render(c, freshId).value)),
  fc.constantFrom<JsonLike>(
    null,
    {},
    'batch',
    [],
    new RawJson(`[${Array.from({ length: 5001 }, () => '{}').join(',')}]`),
    // ~2,500 tiny messages that each inherit a large context: a small body asking for a lot.
    new RawJson(
      `[${Array.from({ length: 2500 }, (_, i) => `{"type":"track","event":"e","userId":"u${i}"}`).join(',')}]`,
    ),
  ),
)

describe('hostile envelopes, credentials and single messages', () => {
  it(
    'never a 5xx, refusals in the envelope, within the time bound',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/v1/batch', '/v1/batch', ...SEGMENT_KINDS.map((k) => `/v1/${k}`)),
          authorization,
          bodyKey,
          batchItems,
          fc.dictionary(
            fc.constantFrom('context', 'sentAt', 'integrations', 'type', 'messageId', 'timestamp'),
            envelopeValue,
            { maxKeys: 3 },
          ),
          fc.boolean(),
          async (url, auth, key, batch, extra, gzip) => {
            const headers: Record<string, string> = { 'content-type': 'application/json' }
            const a = auth()
            if (a !== undefined) headers.authorization = a
            const k = key()
            const entries: [string, JsonLike][] = Object.entries(extra)
            if (url === '/v1/batch') entries.push(['batch', batch])
            else
              entries.push(['event', 'e'], ['userId', 'u'], ['groupId', 'g'], ['previousId', 'p'])
            if (k !== undefined) entries.push(['writeKey', k])
            const text = jsonText(new Entries(entries))
            if (gzip) headers['content-encoding'] = 'gzip'
            const what = `POST ${url} ${JSON.stringify(headers)} ${text.length} chars: ${text.slice(0, 200)}`
            const { res } = await injectWithinBound(
              f.app,
              { method: 'POST', url, headers, payload: gzip ? gzipSync(text) : text },
              what,
            )
            expectSound(res, what, { batchAnswer: url === '/v1/batch' })
          },
        ),
        fuzzParams(300),
      )
      expect((await f.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    },
  )
})

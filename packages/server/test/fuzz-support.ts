// Shared pieces of the property-based fuzz tests (fuzz-*.test.ts): run parameters, the
// properties every answer must keep (no 5xx, the error envelope, a time bound), and
// generators of hostile and valid text and JSON.
import { performance } from 'node:perf_hooks'
import { gunzipSync, inflateSync } from 'node:zlib'
import fc from 'fast-check'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'

/**
 * A fixed seed keeps CI reproducible; FUZZ_SEED explores others and FUZZ_RUNS runs every
 * property that many times (fast-check prints the seed and path of a failure to replay it).
 */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20_260_301)

export function fuzzParams(defaultRuns: number): fc.Parameters<unknown> {
  const runs = Number(process.env.FUZZ_RUNS ?? defaultRuns)
  // The property's own bound applies per request; fast-check's timeout is left off so a slow
  // run reports through the bound instead of as an opaque interruption.
  return { seed: FUZZ_SEED, numRuns: runs, endOnFailure: false }
}

/**
 * Time a property test may take: generous, since a loaded CI machine can be several times
 * slower than a quiet one; no practical limit when FUZZ_RUNS asks for a longer run.
 */
export const FUZZ_TIMEOUT_MS = process.env.FUZZ_RUNS ? 3_600_000 : 120_000

/**
 * Handling time a request may take, by the size of its body once decompressed: 250 ms up to
 * 16 KB (and without a body), plus 2 ms per KB above that (about 1.2 s at 500 KB). A large
 * body is real work, linear in its size: 5,000 messages validated and copied take 100-250 ms
 * on a quiet 2-core machine and two to three times that at a load average of 10. A payload that
 * makes the work superlinear (a quadratic pass, a regex that backtracks) takes far longer and
 * still fails.
 */
export function timeBoundMs(bodyBytes: number): number {
  const kb = bodyBytes / 1024
  return Math.round(250 + 2 * Math.max(0, kb - 16))
}

/** The body's size as the server works on it: decompressed when gzip or deflate and valid. */
function workBytes(opts: InjectOptions): number {
  const { payload } = opts
  if (payload === undefined) return 0
  const sent =
    typeof payload === 'string' || Buffer.isBuffer(payload)
      ? Buffer.from(payload)
      : Buffer.from(JSON.stringify(payload))
  const encoding = String(opts.headers?.['content-encoding'] ?? '')
    .toLowerCase()
    .trim()
  try {
    // The server stops decompressing past its 500 KB limit, and so does this.
    const limit = { maxOutputLength: 600 * 1024 }
    if (encoding === 'gzip' || encoding === 'x-gzip') return gunzipSync(sent, limit).length
    if (encoding === 'deflate') return inflateSync(sent, limit).length
  } catch {
    // not valid (or past the limit): refused before any work on the content
  }
  return sent.length
}

export interface Timed {
  res: LightMyRequestResponse
  ms: number
}

/** `app.inject(opts)` and its wall time, measured with performance.now() around it. */
export async function timedInject(app: FastifyInstance, opts: InjectOptions): Promise<Timed> {
  const started = performance.now()
  const res = await app.inject(opts)
  const ms = performance.now() - started
  countAnswer(res)
  return { res, ms }
}

/**
 * Injects `opts` and checks its handling time against timeBoundMs of its body. On a loaded
 * machine a scheduler pause or a slow commit can push one request over, so a request over the
 * bound is sent once more and fails the property only if it is slow again: a payload that
 * really costs that much is slow every time. Returns the first answer (the one the other checks
 * judge).
 */
export async function injectWithinBound(
  app: FastifyInstance,
  opts: InjectOptions,
  what: string,
): Promise<Timed> {
  const bytes = workBytes(opts)
  const bound = timeBoundMs(bytes)
  const first = await timedInject(app, opts)
  if (first.ms <= bound) return first
  const again = await timedInject(app, opts)
  if (again.ms > bound)
    throw new Error(
      `${what}: took ${first.ms.toFixed(0)} ms, then ${again.ms.toFixed(0)} ms (bound ${bound} ms for ${bytes} bytes)`,
    )
  return first
}

/**
 * With FUZZ_STATS=1, how many answers each status and error code got, per test file (printed by
 * `printFuzzStats`): shows whether the generators reach past the first refusals.
 */
const stats = new Map<string, number>()

export function countAnswer(res: LightMyRequestResponse): void {
  if (!process.env.FUZZ_STATS) return
  let code = ''
  try {
    code = (JSON.parse(res.body) as { error?: { code?: string } })?.error?.code ?? ''
  } catch {
    // not JSON: the status alone
  }
  const key = `${res.statusCode} ${code}`.trim()
  stats.set(key, (stats.get(key) ?? 0) + 1)
}

export function printFuzzStats(label: string): void {
  if (!process.env.FUZZ_STATS) return
  const rows = [...stats].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${n}\t${k}`)
  console.log(`${label}: answers by status and code\n${rows.join('\n')}`)
}

const CODE = /^STRATA_[A-Z0-9_]+$/

/** The answer's body as JSON, or an error naming `what`. */
export function jsonOf(res: LightMyRequestResponse, what: string): any {
  try {
    return JSON.parse(res.body)
  } catch {
    throw new Error(`${what}: ${res.statusCode} answer is not JSON: ${res.body.slice(0, 200)}`)
  }
}

/**
 * Property 1 for one answer: never a 5xx, and a refusal (4xx) answers in the envelope
 * `{"error":{"code":"STRATA_…","message":"…"}}`. `batchAnswer`: the route may answer 400 with its
 * per-item answer instead (every item refused, as documented for the batch routes), each
 * rejected item carrying a STRATA_ code.
 */
export function expectSound(
  res: LightMyRequestResponse,
  what: string,
  options: { batchAnswer?: boolean } = {},
): void {
  const why = () => `${what}: ${res.statusCode} ${res.body.slice(0, 300)}`
  if (res.statusCode >= 500) throw new Error(`5xx answer — ${why()}`)
  if (res.statusCode < 400) return
  const body = jsonOf(res, what)
  if (options.batchAnswer && res.statusCode === 400 && Array.isArray(body?.rejected)) {
    if (body.rejected.length === 0) throw new Error(`400 without a rejected item — ${why()}`)
    for (const r of body.rejected)
      if (!CODE.test(String(r?.error?.code)) || typeof r?.error?.message !== 'string')
        throw new Error(`rejected item without a STRATA_ code — ${why()}`)
    return
  }
  const error = body?.error
  if (
    !error ||
    typeof error !== 'object' ||
    !CODE.test(String(error.code)) ||
    typeof error.message !== 'string' ||
    error.message.length === 0
  )
    throw new Error(`error answer outside the envelope — ${why()}`)
  if (!String(res.headers['content-type']).startsWith('application/json'))
    throw new Error(`error answer is not application/json — ${why()}`)
}

// --- text --------------------------------------------------------------------------------------

/**
 * Valid text PostgreSQL stores unchanged, edge cases included: right-to-left marks and
 * overrides, emoji sequences, 4-byte characters, combining marks, BOM and zero-width
 * characters, line and paragraph separators, JSON's escaped characters.
 */
export const EDGE_TEXT = [
  '\u202Eevil\u202C',
  'שלום עולם',
  'مرحبا',
  '👩‍👩‍👧‍👦',
  '🏳️‍🌈',
  '𝌆𝟘𠜎',
  'e\u0301\u0308\u0327',
  '\uFEFFbom',
  'zero\u200Bwidth\u200D',
  'line\u2028para\u2029',
  'tab\tnl\ncr\r',
  'quote"back\\slash/',
  '\u007F\u0080\u009F',
  '\uFFFD\uFFFF',
  ' ',
  // Text that other layers might read as something else.
  'NaN',
  '-0',
  '1e309',
  'null',
  '__proto__',
  'constructor',
  '%00',
  '\\u0000',
]

/** Text PostgreSQL refuses: NUL and unpaired UTF-16 surrogates, alone or inside other text. */
export const BAD_TEXT = [
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udfffy',
  '\ude00\ud83d',
  '😀\ud83d',
  '\udbff',
]

/** Short valid text (graphemes of any script, or an edge case) of 1..maxLength units. */
export function goodText(maxLength = 16): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength }) },
    { weight: 2, arbitrary: fc.constantFrom(...EDGE_TEXT) },
  )
}

/** Any text at all: valid, hostile, binary code points (NUL and controls included), long. */
export function anyText(): fc.Arbitrary<string> {
  return fc.oneof(
    goodText(),
    fc.constantFrom(...BAD_TEXT),
    fc.string({ unit: 'binary', maxLength: 12 }),
    fc.string({ unit: 'binary-ascii', maxLength: 12 }),
    fc.constantFrom('', ' ', 'null', 'undefined', 'NaN', '-0', '1e309', 'true', '[]', '{}'),
    fc.integer({ min: 256, max: 20_000 }).map((n) => 'x'.repeat(n)),
  )
}

// --- JSON text ---------------------------------------------------------------------------------

/** JSON text written verbatim: 1e309, -0, a value JSON.stringify cannot produce. */
export class RawJson {
  constructor(readonly text: string) {}
}

/** An object written with its entries in this order, duplicate and `__proto__` keys kept. */
export class Entries {
  constructor(readonly entries: [string, JsonLike][]) {}
}

export type JsonLike =
  null | boolean | number | string | RawJson | Entries | JsonLike[] | { [key: string]: JsonLike }

/** JSON text of `value`; lone surrogates come out as \ud800-style escapes. */
export function jsonText(value: JsonLike): string {
  if (value instanceof RawJson) return value.text
  if (value instanceof Entries)
    return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`).join(',')}}`
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`
  if (value !== null && typeof value === 'object')
    return jsonText(new Entries(Object.entries(value)))
  return JSON.stringify(value)
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/** An object key that is valid text and not a prototype key. */
export const goodKey: fc.Arbitrary<string> = fc
  .oneof(
    fc.string({ unit: 'grapheme', maxLength: 8 }),
    fc.string({ unit: 'grapheme-ascii', maxLength: 8 }),
    fc.constantFrom(...EDGE_TEXT, '', '$ref', 'toString', 'hasOwnProperty', '__defineGetter__'),
  )
  .filter((k) => !FORBIDDEN_KEYS.has(k))

/** Finite numbers, as JSON text that parses to them (-0 and extremes written verbatim). */
export const goodNumber: fc.Arbitrary<JsonLike> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(
    new RawJson('-0'),
    new RawJson('1e308'),
    new RawJson('-1.7976931348623157e308'),
    new RawJson('5e-324'),
    new RawJson('1E+2'),
    new RawJson('0.1e-5'),
    new RawJson('123456789012345678901234567890'),
  ),
)

/** A JSON object an event may carry (metadata, properties, traits, context): valid throughout. */
export function goodObject(maxDepth = 3): fc.Arbitrary<Entries> {
  const { obj } = fc.letrec<{ value: JsonLike; obj: Entries; arr: JsonLike[] }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', maxDepth, withCrossShrink: true },
      goodText(),
      goodNumber,
      fc.boolean(),
      fc.constant(null),
      tie('arr'),
      tie('obj'),
    ),
    arr: fc.array(tie('value'), { maxLength: 4 }),
    obj: fc
      .uniqueArray(fc.tuple(goodKey, tie('value')), { maxLength: 5, selector: ([k]) => k })
      .map((entries) => new Entries(entries)),
  }))
  return obj
}

/** `depth` arrays nested in one another, innermost holding `inner`. */
export function nested(depth: number, inner: JsonLike = 1): JsonLike {
  return new RawJson('['.repeat(depth) + jsonText(inner) + ']'.repeat(depth))
}

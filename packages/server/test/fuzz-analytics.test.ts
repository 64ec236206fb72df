// Property-based fuzzing of the analytics query strings with fast-check, against real
// PostgreSQL: /v1/analytics/logins|activity|active-users|sessions|recent-logins and
// /v1/analytics/users/:id/activity with random and mutated from, to, interval, tz, groupBy,
// limit, cursor, userId, method, success, uniques and project values (NUL, lone surrogates,
// undecodable escapes, very long, unicode, repeated parameters), under every kind of
// credential. For every request:
//   1. no 5xx, and every refusal in the {"error":{"code":"STRATA_…","message":…}} envelope;
//   2. handled within timeBoundMs (250 ms: these requests have no body).
// Seed and runs: see fuzzParams (FUZZ_SEED, FUZZ_RUNS).
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  anyText,
  BAD_TEXT,
  EDGE_TEXT,
  expectSound,
  FUZZ_TIMEOUT_MS,
  fuzzParams,
  injectWithinBound,
  printFuzzStats,
} from './fuzz-support.js'
import { ADMIN_TOKEN, ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

let f: IngestFixture
/** nextCursor values of real pages, to mutate. */
const cursors: string[] = []

const DAY = 86_400_000

beforeAll(async () => {
  f = await ingestFixture('fzanalytics', { rateLimit: false }, undefined, {
    authFailureLimit: { max: 0, windowMs: 60_000 },
    rateLimits: { analytics: false },
  })
  // Some rows to page through: logins and activities of three users over ten days.
  const now = Date.now()
  const events = Array.from({ length: 60 }, (_, i) => {
    const timestamp = new Date(now - (i % 10) * DAY - i * 60_000).toISOString()
    const userId = `u${i % 3}`
    return i % 2
      ? { type: 'login', userId, method: i % 4 ? 'password' : 'sso', success: i % 5 > 0, timestamp }
      : { type: 'activity', userId, action: `a${i % 4}`, entityType: 'doc', timestamp }
  })
  const res = await f.app.inject({
    method: 'POST',
    url: '/v1/events/batch',
    headers: { authorization: `Bearer ${f.writeKey}` },
    payload: { events },
  })
  if (res.statusCode !== 202) throw new Error(`seeding failed: ${res.body}`)
  for (const url of [
    '/v1/analytics/recent-logins?limit=2',
    '/v1/analytics/users/u1/activity?limit=2',
  ]) {
    const page = await f.app.inject({
      method: 'GET',
      url,
      headers: { authorization: `Bearer ${f.adminKey}` },
    })
    const next = page.json().nextCursor
    if (typeof next === 'string') cursors.push(next)
  }
})
afterAll(async () => {
  printFuzzStats('fuzz-analytics')
  await f?.close()
})

// --- values -------------------------------------------------------------------------------------

/** A value for the URL, written as is (already percent-encoded, or raw on purpose). */
class UrlText {
  constructor(readonly text: string) {}
}

/**
 * Percent-encodes `s` as UTF-8; an unpaired surrogate (which encodeURIComponent refuses) is
 * written as the three bytes a lax encoder produces for it (%ED%A0%80 for U+D800).
 */
function encode(s: string): string {
  let out = ''
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (c >= 0xd800 && c <= 0xdfff)
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('')
    else out += encodeURIComponent(ch)
  }
  return out
}

const urlValue = (v: string | UrlText) => (v instanceof UrlText ? v.text : encode(v))

/** Instants as the API takes them, near or far, and strings that only look like one. */
const instant: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: -500 * DAY, max: 2 * DAY }).map((d) => new Date(Date.now() + d).toISOString()),
  fc
    .tuple(
      fc.integer({ min: -30 * DAY, max: 0 }),
      fc.constantFrom('+05:30', '-08:00', 'z', '+14:00'),
    )
    .map(([d, off]) => new Date(Date.now() + d).toISOString().replace('Z', off)),
  fc.constantFrom(
    '0001-01-01T00:00:00Z',
    '0099-12-31T00:00:00Z',
    '9999-12-31T23:59:59Z',
    '1970-01-01T00:00:00Z',
    '2026-02-29T00:00:00Z',
    '2024-02-29T00:00:00Z',
    '2026-03-08T02:30:00-05:00',
    '2026-01-01T00:00:00.999999999Z',
    '2026-01-01',
    'now',
    '-1',
    '1700000000000',
    'Infinity',
    'NaN',
  ),
)

/** IANA names, offsets, paths and junk. */
const tz = fc.oneof(
  fc.constantFrom(
    'UTC',
    'Etc/UTC',
    'Europe/Paris',
    'America/St_Johns',
    'Asia/Kathmandu',
    'Pacific/Chatham',
    'Asia/Kolkata',
    'Europe/Kyiv',
    'Etc/GMT+14',
    'Etc/GMT-14',
    'America/Argentina/Buenos_Aires',
    'EST5EDT',
    'utc',
    'Factory',
    'localtime',
    'posixrules',
    '+05:30',
    'Z',
    'Mars/Olympus_Mons',
    '../../../etc/passwd',
    'Europe/Paris/Extra/Deep',
    `Europe/${'x'.repeat(70)}`,
  ),
  anyText(),
)

/** Cursors: real ones, mutated ones, ones in the right format with impossible fields. */
const cursor: fc.Arbitrary<string | UrlText> = fc.oneof(
  fc.constant(null).map(() => cursors[0] ?? ''),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([i, b]) => {
    const c = Buffer.from(cursors[i % cursors.length] ?? 'AA', 'base64url')
    c[i % c.length] = b
    return c.toString('base64url')
  }),
  fc
    .tuple(
      fc.oneof(fc.constantFrom(0, 1, 99, 1969, 2026, 9999), fc.integer({ min: 0, max: 9999 })),
      fc.integer({ min: 0, max: 13 }),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 25 }),
      fc.integer({ min: 0, max: 60 }),
      fc.integer({ min: 0, max: 61 }),
      fc.oneof(fc.constantFrom('m1', ''), anyText()),
    )
    .map(([y, mo, d, h, mi, s, id]) => {
      const p = (n: number, w = 2) => String(n).padStart(w, '0')
      const ts = `${p(y, 4)}-${p(mo)}-${p(d)}T${p(h)}:${p(mi)}:${p(s)}.000000Z`
      return Buffer.from(JSON.stringify([ts, id])).toString('base64url')
    }),
  fc
    .constantFrom<unknown>(
      ['2026-01-01T00:00:00.000000Z'],
      ['2026-01-01T00:00:00.000000Z', 1],
      ['2026-01-01T00:00:00.000000Z', 'a', 'b'],
      [1, 'a'],
      { ts: '2026-01-01T00:00:00.000000Z', id: 'a' },
      'x',
      null,
    )
    .map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')),
  fc.constantFrom(
    new UrlText('%%%'),
    new UrlText('a%2'),
    new UrlText('%FF%FE'),
    'x'.repeat(2001),
    '====',
    '-_-_',
  ),
  anyText(),
)

const limit = fc.oneof(
  fc.integer({ min: -5, max: 1000 }).map(String),
  fc.constantFrom('1.5', '1e3', '1e309', '0x10', ' 5', '5 ', '+5', '9'.repeat(400), 'NaN', '-0'),
  anyText(),
)

/** Mostly `plausible`, sometimes any text at all. */
const mostly = <T>(plausible: fc.Arbitrary<T>): fc.Arbitrary<T | string> =>
  fc.oneof({ weight: 5, arbitrary: plausible }, anyText())

const flag = mostly(fc.constantFrom('true', 'false', '1', '0', 'yes', 'TRUE', ''))

/** Hostile text and URL fragments the query parser has to cope with. */
const junk: fc.Arbitrary<string | UrlText> = fc.oneof(
  anyText(),
  fc.constantFrom(...BAD_TEXT, ...EDGE_TEXT),
  fc.constantFrom(
    new UrlText('%00'),
    new UrlText('a%00b'),
    new UrlText('%ED%A0%80'),
    new UrlText('%F0%9F'),
    new UrlText('%C0%80'),
    new UrlText('%'),
    new UrlText('%zz'),
    new UrlText('a+b'),
    new UrlText('a=b=c'),
    new UrlText('[]'),
    new UrlText('x'.repeat(5000)),
  ),
)

const PARAMS: Record<string, fc.Arbitrary<string | UrlText>> = {
  from: instant,
  to: instant,
  tz,
  interval: mostly(fc.constantFrom('hour', 'day', 'week', 'month', 'HOUR', '')),
  groupBy: mostly(fc.constantFrom('action', 'entity_type', 'user', '')),
  uniques: flag,
  success: flag,
  limit,
  cursor,
  userId: mostly(fc.constantFrom('u1', 'u2', '')),
  method: mostly(fc.constantFrom('password', 'sso')),
  project: fc.oneof(
    fc.constant(null).map(() => f.projectId),
    fc.constant(null).map(() => f.projectId.toUpperCase()),
    fc.uuid(),
    fc.constantFrom('not-a-uuid', '00000000-0000-0000-0000-000000000000', ''),
    anyText(),
  ),
}

/** A query string: known parameters (some repeated), unknown ones, hostile names. */
const query: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      {
        weight: 14,
        arbitrary: fc
          .constantFrom(...Object.keys(PARAMS))
          .chain((name) =>
            fc.tuple(
              fc.constant<string | UrlText>(name),
              fc.oneof({ weight: 12, arbitrary: PARAMS[name]! }, junk),
            ),
          ),
      },
      { weight: 1, arbitrary: fc.tuple(junk, junk) },
    ),
    { maxLength: 7 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${urlValue(k)}=${urlValue(v)}`).join('&'))

const ROUTES = ['logins', 'activity', 'active-users', 'sessions', 'recent-logins', 'user-activity']

const userPath: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('u1', 'u0', 'nobody'),
  junk.map(urlValue),
  fc.integer({ min: 150, max: 300 }).map((n) => 'u'.repeat(n)),
)

/** Credentials: the admin key mostly (the only one that reaches the queries), others too. */
const credential = fc.oneof(
  { weight: 6, arbitrary: fc.constant<'admin' | 'operator' | 'write' | 'none' | 'bad'>('admin') },
  { weight: 2, arbitrary: fc.constant<'operator'>('operator') },
  fc.constantFrom<('write' | 'none' | 'bad')[]>('write', 'none', 'bad'),
)

describe('analytics query strings', () => {
  it(
    'never a 5xx, refusals in the envelope, within the time bound',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...ROUTES),
          userPath,
          query,
          credential,
          fc.option(fc.constantFrom('*', '"x"', 'W/"x"', '', '"', ',,,'), { nil: undefined }),
          async (route, user, qs, who, ifNoneMatch) => {
            const path =
              route === 'user-activity'
                ? `/v1/analytics/users/${user}/activity`
                : `/v1/analytics/${route}`
            // The operator names a project; half of the time it is in the generated query.
            const url = `${path}?${qs}${who === 'operator' && !qs.includes('project=') ? `&project=${f.projectId}` : ''}`
            const token =
              who === 'admin'
                ? f.adminKey
                : who === 'operator'
                  ? ADMIN_TOKEN
                  : who === 'write'
                    ? f.writeKey
                    : who === 'bad'
                      ? `${f.adminKey}x`
                      : undefined
            const headers: Record<string, string> = {}
            if (token) headers.authorization = `Bearer ${token}`
            if (ifNoneMatch !== undefined) headers['if-none-match'] = ifNoneMatch
            const what = `GET ${url.slice(0, 600)} as ${who}`
            const { res } = await injectWithinBound(f.app, { method: 'GET', url, headers }, what)
            expectSound(res, what)
          },
        ),
        fuzzParams(500),
      )
      expect((await f.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    },
  )
})

describe('analytics ranges', () => {
  // Any instant of years 0001-9999 in any zone: the answer's range is the one asked for.
  it(
    'the answer echoes the requested range as the same instants',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.date({
            min: new Date('0001-01-02T00:00:00Z'),
            max: new Date('9999-12-01T00:00:00Z'),
            noInvalidDate: true,
          }),
          fc.integer({ min: 1, max: 30 * 24 }),
          fc.constantFrom(
            'UTC',
            'Europe/Paris',
            'America/St_Johns',
            'Asia/Kathmandu',
            'Etc/GMT+12',
          ),
          fc.constantFrom('logins', 'active-users', 'activity', 'sessions'),
          async (start, hours, zone, route) => {
            const from = new Date(Math.floor(start.getTime() / 1000) * 1000).toISOString()
            const to = new Date(Date.parse(from) + hours * 3_600_000).toISOString()
            const url = `/v1/analytics/${route}?from=${from}&to=${to}&tz=${encodeURIComponent(zone)}`
            const { res } = await injectWithinBound(
              f.app,
              { method: 'GET', url, headers: { authorization: `Bearer ${f.adminKey}` } },
              url,
            )
            expectSound(res, url)
            const why = `${url}: ${res.statusCode} ${res.body.slice(0, 300)}`
            expect(res.statusCode, why).toBe(200)
            const { range } = res.json()
            expect(Date.parse(range.from), why).toBe(Date.parse(from))
            expect(Date.parse(range.to), why).toBe(Date.parse(to))
          },
        ),
        fuzzParams(60),
      )
    },
  )
})

describe('regressions found by the fuzzer', () => {
  /** A keyset cursor of the API's shape (timestamp with microseconds, id). */
  const cursorOf = (ts: string, id = 'm1') =>
    Buffer.from(JSON.stringify([ts, id])).toString('base64url')

  // Date.UTC reads years 0-99 as 1900-1999, so 0099-01-01 was answered as 1999-01-01. Intl
  // writes year 1 as "1" and 1 BC as "1" too, and historical offsets with seconds
  // ("+00:09:21", Paris before 1911), none of which is ISO 8601 a client can parse.
  it(
    'a range is answered as the instants asked for, in any year and zone',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      for (const [from, to, tz] of [
        ['0099-01-01T00:00:00Z', '0099-01-03T00:00:00Z', 'UTC'],
        ['0001-01-01T00:00:00Z', '0001-01-02T00:00:00Z', 'Etc/GMT+12'],
        ['0999-06-01T00:00:00Z', '0999-06-02T00:00:00Z', 'Europe/Paris'],
        ['1911-03-10T23:50:38Z', '1911-03-11T00:50:38Z', 'Europe/Paris'],
      ]) {
        const url = `/v1/analytics/logins?from=${from}&to=${to}&tz=${encodeURIComponent(tz!)}`
        const res = await f.app.inject({
          method: 'GET',
          url,
          headers: { authorization: `Bearer ${f.adminKey}` },
        })
        const why = `${url}: ${res.body.slice(0, 300)}`
        expect(res.statusCode, why).toBe(200)
        const { range, series } = res.json()
        expect(range.from, why).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$/)
        expect(Date.parse(range.from), why).toBe(Date.parse(from!))
        expect(Date.parse(range.to), why).toBe(Date.parse(to!))
        for (const b of series) expect(Number.isFinite(Date.parse(b.start)), why).toBe(true)
      }
    },
  )

  // Without `from`, the range starts 30 days before `to`: before year 1 for a `to` early in
  // year 1, an instant the queries' ISO text cannot carry to PostgreSQL (a 500).
  it(
    'a range reaching before year 1 is a 400 STRATA_ANALYTICS_INVALID_RANGE',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      for (const url of [
        '/v1/analytics/logins?to=0001-01-01T00:00:00Z',
        '/v1/analytics/active-users?to=0001-01-15T00:00:00Z',
        '/v1/analytics/sessions?to=0001-01-29T23:59:59Z&tz=Etc%2FGMT%2B12',
      ]) {
        const res = await f.app.inject({
          method: 'GET',
          url,
          headers: { authorization: `Bearer ${f.adminKey}` },
        })
        expect(res.statusCode, `${url}: ${res.body}`).toBe(400)
        expect(res.json().error.code).toBe('STRATA_ANALYTICS_INVALID_RANGE')
      }
    },
  )

  // Date.parse reads year 0000 (1 BC) and rolls 30 February over to 2 March; PostgreSQL's
  // timestamptz refuses both ("date/time field value out of range"), which came back as a 500.
  it(
    'a cursor whose timestamp PostgreSQL refuses is a 400 STRATA_ANALYTICS_INVALID_CURSOR',
    { timeout: FUZZ_TIMEOUT_MS },
    async () => {
      for (const ts of [
        '0000-01-01T00:00:00.000000Z',
        '2026-02-30T00:00:00.000000Z',
        '2026-04-31T12:00:00.000000Z',
        '2026-01-01T24:00:00.000000Z',
      ])
        for (const url of [
          `/v1/analytics/recent-logins?cursor=${cursorOf(ts)}`,
          `/v1/analytics/users/u1/activity?cursor=${cursorOf(ts)}`,
        ]) {
          const res = await f.app.inject({
            method: 'GET',
            url,
            headers: { authorization: `Bearer ${f.adminKey}` },
          })
          expect(res.statusCode, `${ts} ${url}: ${res.body}`).toBe(400)
          expect(res.json().error.code).toBe('STRATA_ANALYTICS_INVALID_CURSOR')
        }
    },
  )
})

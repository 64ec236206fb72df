// Every text a request carries is checked before PostgreSQL sees it: hostile values (NUL, lone
// UTF-16 surrogates, IPv6 zone ids, overlong strings) in query strings, path parameters,
// cursors, bodies and proxy headers get a 4xx with a STRATA_* code, never a 5xx. Over real
// HTTP, against real PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { listenForTests, type HttpAnswer } from './support/http.js'
import { ADMIN_TOKEN, count, ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

let f: IngestFixture
let send: Awaited<ReturnType<typeof listenForTests>>['send']

beforeAll(async () => {
  f = await ingestFixture('hostile', { rateLimit: false }, undefined, {
    trustProxy: true, // X-Forwarded-For decides the client IP
    rateLimits: { analytics: false, imports: false, performance: false },
  })
  send = (await listenForTests(f.app)).send
})
afterAll(async () => {
  await f?.close()
})

const as = (key: string) => ({ authorization: `Bearer ${key}` })
const operator = () => as(ADMIN_TOKEN)
const admin = () => as(f.adminKey)
const write = () => as(f.writeKey)

/** Hostile strings for JSON bodies (JSON.stringify writes lone surrogates as \ud800 escapes). */
const BODY_VALUES: [label: string, value: string][] = [
  ['NUL', '\u0000'],
  ['embedded NUL', 'ok\u0000ok'],
  ['lone high surrogate', '\ud800'],
  ['lone low surrogate', 'a\udfffb'],
  ['reversed pair', '\ude00\ud83d'],
  ['overlong', 'x'.repeat(100_000)],
]
/** The same classes as they can appear in a URL: percent-encoded NUL, bad UTF-8, overlong. */
const URL_VALUES: [label: string, value: string][] = [
  ['NUL', '%00'],
  ['embedded NUL', 'ok%00ok'],
  ['encoded lone surrogate', '%ED%A0%80'],
  ['truncated UTF-8', '%F0%9F'],
  ['overlong', 'x'.repeat(3000)],
]
const ZONE_IPS = ['fe80::1%eth0', '::1%lo', 'fe80::1%25eth0', 'fe80::abcd%12']

function expectRefused(res: HttpAnswer, what: string): void {
  const why = `${what}: ${res.status} ${res.text.slice(0, 300)}`
  expect(res.status, why).toBeGreaterThanOrEqual(400)
  expect(res.status, why).toBeLessThan(500)
  // Batch routes answer per item: {"accepted":0,…,"rejected":[{"index","error":{…}}]}.
  const code: unknown = res.json?.error?.code ?? res.json?.rejected?.[0]?.error?.code
  expect(String(code), why).toMatch(/^STRATA_[A-Z_]+$/)
}

/** A keyset cursor as the API encodes one, with any id. */
const cursorWithId = (id: string) =>
  Buffer.from(JSON.stringify(['2026-01-01T00:00:00.000000Z', id]), 'utf8').toString('base64url')

describe('query strings and path parameters', () => {
  const queryRoutes: [path: (v: string) => string, headers: () => Record<string, string>][] = [
    ...['userId', 'method', 'success', 'cursor', 'limit'].map(
      (p) =>
        [(v: string) => `/v1/analytics/recent-logins?${p}=${v}`, admin] as [
          (v: string) => string,
          () => Record<string, string>,
        ],
    ),
    [(v) => `/v1/analytics/logins?tz=${v}`, admin],
    [(v) => `/v1/analytics/logins?from=${v}`, admin],
    [(v) => `/v1/analytics/logins?interval=${v}`, admin],
    [(v) => `/v1/analytics/logins?uniques=${v}`, admin],
    [(v) => `/v1/analytics/activity?groupBy=${v}`, admin],
    [(v) => `/v1/analytics/active-users?to=${v}`, admin],
    [(v) => `/v1/analytics/sessions?project=${v}`, operator],
    [(v) => `/v1/analytics/users/u1/activity?cursor=${v}`, admin],
    [(v) => `/v1/analytics/recent-logins?userId=a&userId=${v}`, admin],
    // A hostile parameter name (an unknown long one is ignored, so not the overlong value).
    [(v) => `/v1/analytics/recent-logins?${v.length > 100 ? '%00' : v}=1`, admin],
    [(v) => `/v1/imports?cursor=${v}`, operator],
    [(v) => `/v1/imports?status=${v}`, operator],
    [(v) => `/v1/performance/queries?limit=${v}`, operator],
  ]
  const paramRoutes: [
    method: string,
    path: (v: string) => string,
    headers: () => Record<string, string>,
  ][] = [
    ['GET', (v) => `/v1/analytics/users/${v}/activity`, admin],
    ['GET', (v) => `/v1/sessions/${v}`, admin],
    ['POST', (v) => `/v1/sessions/${v}/touch`, admin],
    ['DELETE', (v) => `/v1/sessions/${v}`, admin],
    ['GET', (v) => `/v1/projects/${v}/keys`, operator],
    ['POST', (v) => `/v1/projects/${v}/keys`, operator],
    ['DELETE', (v) => `/v1/keys/${v}`, operator],
    ['GET', (v) => `/v1/imports/${v}`, operator],
    ['GET', (v) => `/v1/imports/${v}/rejects`, operator],
    ['POST', (v) => `/v1/imports/${v}/cancel`, operator],
  ]

  it('every query parameter × hostile value → 4xx with a code', async () => {
    for (const [label, v] of URL_VALUES)
      for (const [path, headers] of queryRoutes) {
        const url = path(v)
        expectRefused(
          await send('GET', url, { headers: headers() }),
          `${label} GET ${url.slice(0, 80)}`,
        )
      }
  })

  it('a NUL in a query value is refused naming the parameter, before any query runs', async () => {
    for (const p of ['userId', 'method']) {
      const res = await send('GET', `/v1/analytics/recent-logins?${p}=a%00b`, { headers: admin() })
      expectRefused(res, p)
      expect(res.status).toBe(400)
      expect(JSON.stringify(res.json.error)).toContain(p)
      expect(res.text).not.toMatch(/invalid byte sequence|UTF8/i)
    }
    const id = await send('GET', '/v1/analytics/users/a%00b/activity', { headers: admin() })
    expect([id.status, id.json.error.details.parameter]).toEqual([400, 'id'])
  })

  it('every path parameter × hostile value → 4xx with a code', async () => {
    for (const [label, v] of URL_VALUES)
      for (const [method, path, headers] of paramRoutes) {
        const url = path(v)
        const res = await send(method, url, {
          headers: headers(),
          ...(method === 'POST' ? { body: { kind: 'write' } } : {}),
        })
        expectRefused(res, `${label} ${method} ${url.slice(0, 80)}`)
      }
  })

  it('cursors whose id carries NUL or a lone surrogate → 400 with the cursor code', async () => {
    for (const [label, v] of BODY_VALUES.slice(0, 5)) {
      const c = cursorWithId(v)
      const logins = await send('GET', `/v1/analytics/recent-logins?cursor=${c}`, {
        headers: admin(),
      })
      expectRefused(logins, `${label} recent-logins cursor`)
      expect(logins.json.error.code).toBe('STRATA_ANALYTICS_INVALID_CURSOR')
      const activity = await send('GET', `/v1/analytics/users/u1/activity?cursor=${c}`, {
        headers: admin(),
      })
      expect(activity.json?.error?.code, label).toBe('STRATA_ANALYTICS_INVALID_CURSOR')
      const jobs = await send('GET', `/v1/imports?cursor=${c}`, { headers: operator() })
      expectRefused(jobs, `${label} imports cursor`)
      expect(jobs.json.error.details).toMatchObject({ parameter: 'cursor' })
    }
  })
})

describe('bodies', () => {
  const login = { userId: 'u1', method: 'email', success: true }
  const activity = { userId: 'u1', action: 'view' }
  interface BodyCase {
    url: string
    headers: () => Record<string, string>
    body: (v: string) => object
    /** The field has a length limit (free-form JSON such as properties has only the body's). */
    bounded: boolean
  }
  const c = (
    url: string,
    headers: () => Record<string, string>,
    body: (v: string) => object,
    bounded = true,
  ): BodyCase => ({ url, headers, body, bounded })
  const loginFields = ['userId', 'email', 'method', 'failureReason', 'sessionId', 'messageId']
  const cases: BodyCase[] = [
    ...[...loginFields, 'userAgent', 'browser', 'os'].map((k) =>
      c('/v1/logins', write, (v) => ({ ...login, [k]: v })),
    ),
    c('/v1/activities', write, (v) => ({ ...activity, entityId: v })),
    c('/v1/activities', write, (v) => ({ ...activity, metadata: { deep: [{ x: v }] } }), false),
    c('/v1/activities', write, (v) => ({ ...activity, metadata: { [`k${v}`]: 1 } }), false),
    c('/v1/events/batch', write, (v) => ({ events: [{ type: 'login', ...login, userId: v }] })),
    c(
      '/v1/events/batch',
      write,
      (v) => ({ events: [{ type: 'track', userId: 'u', event: 'e', properties: { v } }] }),
      false,
    ),
    c('/v1/track', write, (v) => ({ userId: 'u', event: 'Clicked', properties: { l: v } }), false),
    c('/v1/track', write, (v) => ({ userId: 'u', event: v })),
    c('/v1/identify', write, (v) => ({ userId: 'u', traits: { name: v } }), false),
    c('/v1/page', write, (v) => ({ anonymousId: 'a', context: { page: { title: v } } }), false),
    c('/v1/screen', write, (v) => ({ userId: v, name: 's' })),
    c('/v1/group', write, (v) => ({ userId: 'u', groupId: 'g', traits: { [v]: 'k' } }), false),
    c('/v1/alias', write, (v) => ({ userId: 'u', previousId: v })),
    c(
      '/v1/batch',
      write,
      (v) => ({ batch: [{ type: 'track', userId: 'u', event: 'e' }], context: { ip: v } }),
      false,
    ),
    c('/v1/sessions', admin, (v) => ({ userId: v })),
    c('/v1/sessions', admin, (v) => ({ userId: 'u', userAgent: v })),
    c('/v1/sessions', admin, (v) => ({ userId: 'u', ip: v })),
    c('/v1/projects', operator, (v) => ({ name: v })),
    c(
      '/v1/performance/query-plan',
      operator,
      (v) => ({ sql: 'SELECT $1::text', params: [v] }),
      false,
    ),
  ]

  it('every body field × hostile value → 4xx with a code, nothing stored', async () => {
    const before = await count(f.db, 'events')
    for (const [label, v] of BODY_VALUES)
      for (const { url, headers, body, bounded } of cases) {
        if (label === 'overlong' && !bounded) continue
        const res = await send('POST', url, { headers: headers(), body: body(v) })
        expectRefused(res, `${label} POST ${url} ${JSON.stringify(body('…'))}`)
      }
    expect(await count(f.db, 'events')).toBe(before)
    expect(await count(f.db, `login_events WHERE user_id <> 'u1'`)).toBe(0)
  })

  it('the refusal names where the bad string is', async () => {
    const res = await send('POST', '/v1/activities', {
      headers: write(),
      body: { ...activity, metadata: { a: ['ok', 'x\u0000'] } },
    })
    expect([res.status, res.json.error.code]).toEqual([400, 'STRATA_EVENT_INVALID_STRING'])
    expect(res.json.error.details.path).toBe('/metadata/a/1')
    const s = await send('POST', '/v1/sessions', {
      headers: admin(),
      body: { userId: 'u', userAgent: 'UA\ud800' },
    })
    expect([s.status, s.json.error.code, s.json.error.details.parameter]).toEqual([
      400,
      'STRATA_SESSION_INVALID',
      'userAgent',
    ])
    const p = await send('POST', '/v1/projects', { headers: operator(), body: { name: 'a\ud800' } })
    expect([p.status, p.json.error.code]).toEqual([400, 'STRATA_VALIDATION_FAILED'])
    // Not stored with U+FFFD in place of the surrogate either.
    expect(await count(f.db, `projects WHERE strpos(name, chr(65533)) > 0`)).toBe(0)
  })
})

describe('IP addresses Node accepts and PostgreSQL refuses', () => {
  it('a zone id is dropped at validation: from the body, from X-Forwarded-For, for sessions', async () => {
    for (const [i, ip] of ZONE_IPS.entries()) {
      const body = await send('POST', '/v1/logins', {
        headers: write(),
        body: { ...{ userId: 'zone', method: 'email', success: true }, messageId: `zb-${i}`, ip },
      })
      expect(body.status, `${ip}: ${body.text}`).toBe(202)
      const viaProxy = await send('POST', '/v1/logins', {
        headers: { ...write(), 'x-forwarded-for': ip },
        body: { userId: 'zone', method: 'email', success: true, messageId: `zx-${i}` },
      })
      expect(viaProxy.status, `${ip}: ${viaProxy.text}`).toBe(202)
      const batch = await send('POST', '/v1/events/batch', {
        headers: write(),
        body: {
          events: [
            {
              type: 'login',
              userId: 'zone',
              method: 'email',
              success: true,
              messageId: `zq-${i}`,
              ip,
            },
          ],
        },
      })
      expect([batch.status, batch.json.accepted], batch.text).toEqual([202, 1])
      const session = await send('POST', '/v1/sessions', {
        headers: { ...admin(), 'x-forwarded-for': ip },
        body: { userId: 'zone', ip },
      })
      expect(session.status, session.text).toBe(201)
      expect(session.json.session.ip).toBe(ip.slice(0, ip.indexOf('%')))
    }
    const stored = await f.db.query<{ message_id: string; ip: string }>(
      `SELECT message_id, host(ip) AS ip FROM login_events WHERE user_id = 'zone' ORDER BY message_id`,
    )
    expect(stored.rows).toHaveLength(ZONE_IPS.length * 3)
    for (const r of stored.rows) {
      const sent = ZONE_IPS[Number(r.message_id.slice(3))]!
      expect(r.ip, r.message_id).toBe(sent.slice(0, sent.indexOf('%')))
    }
  })

  it('an address that is not one is refused with a code, never reaching inet', async () => {
    for (const ip of ['nope', '1.2.3.4%eth0', 'fe80::1%', '999.0.0.1', 'fe80::1%\u0000']) {
      const login = await send('POST', '/v1/logins', {
        headers: write(),
        body: { userId: 'zone', method: 'email', success: true, ip },
      })
      expectRefused(login, `login ip ${ip}`)
      expect(login.json.error.code).toMatch(/^STRATA_EVENT_INVALID_(IP|STRING)$/)
      const session = await send('POST', '/v1/sessions', {
        headers: admin(),
        body: { userId: 'zone', ip },
      })
      expectRefused(session, `session ip ${ip}`)
    }
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

// The analytics HTTP surface: auth and tenant isolation, 400s, cache headers and 304s, and
// one end-to-end exactness check through the real write path (query-level property tests
// live in packages/events/test/analytics.test.ts).
let f: IngestFixture
let b: { projectId: string; writeKey: string; adminKey: string }

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const FROM = '2026-10-25T00:00:00Z'
const TO = '2026-11-05T00:00:00Z'

async function ingest(writeKey: string, prefix: string, n: number) {
  const events = Array.from({ length: n }, (_, i) => ({
    type: i % 3 === 2 ? 'activity' : 'login',
    messageId: `${prefix}-${i}`,
    userId: `${prefix}-user-${i % 7}`,
    ...(i % 3 === 2
      ? { action: ['view', 'create'][i % 2], entityType: i % 4 ? 'doc' : undefined }
      : {
          method: ['email', 'google', 'okta_saml'][Math.floor(i / 3) % 3],
          success: i % 5 !== 0,
          deviceType: i % 2 ? 'mobile' : 'desktop',
        }),
    // Spread over the range, across New York's fall-back (2026-11-01).
    timestamp: new Date(Date.parse(FROM) + i * 7_919_000 + 123).toISOString(),
  }))
  for (let i = 0; i < events.length; i += 100) {
    const res = await f.app.inject({
      method: 'POST',
      url: '/v1/events/batch',
      headers: bearer(writeKey),
      payload: { events: events.slice(i, i + 100) },
    })
    expect(res.statusCode, res.body).toBe(202)
  }
}

beforeAll(async () => {
  f = await ingestFixture('anr')
  const res = await f.app.inject({
    method: 'POST',
    url: '/v1/projects',
    headers: bearer(ADMIN_TOKEN),
    payload: { name: 'other' },
  })
  const body = res.json() as { project: { id: string }; keys: { write: string; admin: string } }
  b = { projectId: body.project.id, writeKey: body.keys.write, adminKey: body.keys.admin }
  await ingest(f.writeKey, 'a', 120)
  await ingest(b.writeKey, 'b', 90)
}, 60_000)

afterAll(async () => {
  await f?.close()
})

const get = (url: string, token: string, headers: Record<string, string> = {}) =>
  f.app.inject({ method: 'GET', url, headers: { ...bearer(token), ...headers } })

describe('logins through HTTP', () => {
  it('equals raw SQL for the admin key, in New York time', async () => {
    const res = await get(
      `/v1/analytics/logins?from=${FROM}&to=${TO}&interval=day&tz=America/New_York`,
      f.adminKey,
    )
    expect(res.statusCode, res.body).toBe(200)
    const body = res.json()
    const want = await f.db.query<{ n: string; s: string; u: string }>(
      `SELECT count(*) AS n, count(*) FILTER (WHERE success) AS s, count(DISTINCT user_id) AS u
       FROM login_events WHERE project_id = $1 AND ts >= $2 AND ts < $3`,
      [f.projectId, FROM, TO],
    )
    expect(body.totals.logins).toBe(Number(want.rows[0]!.n))
    expect(body.totals.logins).toBe(80)
    expect(body.totals.successes).toBe(Number(want.rows[0]!.s))
    expect(body.totals.uniqueUsers).toBe(Number(want.rows[0]!.u))
    expect(body.totals.successRate).toBeCloseTo(body.totals.successes / body.totals.logins, 10)
    expect(body.range).toEqual({
      from: '2026-10-24T20:00:00-04:00',
      to: '2026-11-04T19:00:00-05:00',
      tz: 'America/New_York',
      interval: 'day',
    })
    expect(body.series.map((s: { start: string }) => s.start)).toContain(
      '2026-11-01T00:00:00-04:00',
    )
    expect(body.series.map((s: { start: string }) => s.start)).toContain(
      '2026-11-02T00:00:00-05:00',
    )
    expect(Object.keys(body.byMethod).sort()).toEqual(['email', 'google', 'okta_saml'])
  })

  it('the operator token with ?project= gets the same answer', async () => {
    const url = `/v1/analytics/logins?from=${FROM}&to=${TO}`
    const a = await get(url, f.adminKey)
    const op = await get(`${url}&project=${f.projectId}`, ADMIN_TOKEN)
    expect(op.statusCode).toBe(200)
    expect(op.json()).toEqual(a.json())
  })
})

describe('tenant isolation', () => {
  it("project A's key never sees B's data", async () => {
    const a = (await get(`/v1/analytics/recent-logins?limit=500`, f.adminKey)).json()
    expect(a.items.length).toBe(80)
    expect(a.items.every((i: { userId: string }) => i.userId.startsWith('a-'))).toBe(true)
    const bRes = (await get(`/v1/analytics/recent-logins?limit=500`, b.adminKey)).json()
    expect(bRes.items.length).toBe(60)
    expect(bRes.items.every((i: { userId: string }) => i.userId.startsWith('b-'))).toBe(true)
    const act = (await get(`/v1/analytics/users/b-user-2/activity`, f.adminKey)).json()
    expect(act).toEqual({ items: [], nextCursor: null })
    const actB = (await get(`/v1/analytics/users/b-user-2/activity`, b.adminKey)).json()
    expect(actB.items.length).toBeGreaterThan(0)
  })

  it("A's admin key asking for B's project → 403; write key → 403; none → 401", async () => {
    const r1 = await get(`/v1/analytics/logins?project=${b.projectId}`, f.adminKey)
    expect(r1.statusCode).toBe(403)
    expect(r1.json().error.code).toBe('STRATA_AUTH_FORBIDDEN')
    const r2 = await get(`/v1/analytics/logins`, f.writeKey)
    expect(r2.statusCode).toBe(403)
    const r3 = await f.app.inject({ method: 'GET', url: '/v1/analytics/active-users' })
    expect(r3.statusCode).toBe(401)
  })

  it('operator: project required (400) and must exist (404)', async () => {
    const r1 = await get(`/v1/analytics/sessions`, ADMIN_TOKEN)
    expect(r1.statusCode).toBe(400)
    expect(r1.json().error.code).toBe('STRATA_ANALYTICS_INVALID_PARAMETER')
    const r2 = await get(
      `/v1/analytics/sessions?project=00000000-0000-4000-8000-000000000000`,
      ADMIN_TOKEN,
    )
    expect(r2.statusCode).toBe(404)
    const r3 = await get(`/v1/analytics/sessions?project=x';drop`, ADMIN_TOKEN)
    expect(r3.statusCode).toBe(400)
  })
})

describe('bad parameters → clear 400s', () => {
  const cases: [string, string][] = [
    ['/v1/analytics/logins?from=yesterday', 'STRATA_ANALYTICS_INVALID_RANGE'],
    ['/v1/analytics/logins?from=2026-10-01T00:00:00', 'STRATA_ANALYTICS_INVALID_RANGE'],
    [`/v1/analytics/logins?from=${TO}&to=${FROM}`, 'STRATA_ANALYTICS_INVALID_RANGE'],
    [
      '/v1/analytics/logins?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z',
      'STRATA_ANALYTICS_INVALID_RANGE',
    ],
    ['/v1/analytics/logins?tz=Mars/Olympus', 'STRATA_ANALYTICS_INVALID_TIMEZONE'],
    ['/v1/analytics/logins?tz=EST5EDT%3Bselect', 'STRATA_ANALYTICS_INVALID_TIMEZONE'],
    ['/v1/analytics/logins?interval=month', 'STRATA_ANALYTICS_INVALID_PARAMETER'],
    [
      '/v1/analytics/logins?interval=hour&from=2026-01-01T00:00:00Z&to=2026-11-01T00:00:00Z',
      'STRATA_ANALYTICS_INVALID_PARAMETER',
    ],
    ['/v1/analytics/activity?groupBy=user_id', 'STRATA_ANALYTICS_INVALID_PARAMETER'],
    ['/v1/analytics/logins?uniques=maybe', 'STRATA_ANALYTICS_INVALID_PARAMETER'],
    ['/v1/analytics/recent-logins?limit=0', 'STRATA_ANALYTICS_INVALID_PARAMETER'],
    ['/v1/analytics/recent-logins?limit=abc', 'STRATA_ANALYTICS_INVALID_PARAMETER'],
    ['/v1/analytics/recent-logins?cursor=bm90LWEtY3Vyc29y', 'STRATA_ANALYTICS_INVALID_CURSOR'],
    ['/v1/analytics/users/u1/activity?cursor=%5B%5D', 'STRATA_ANALYTICS_INVALID_CURSOR'],
    ['/v1/analytics/recent-logins?success=sometimes', 'STRATA_ANALYTICS_INVALID_PARAMETER'],
    [`/v1/analytics/recent-logins?userId=${'x'.repeat(256)}`, 'STRATA_ANALYTICS_INVALID_PARAMETER'],
    ['/v1/analytics/recent-logins?method=a&method=b', 'STRATA_ANALYTICS_INVALID_PARAMETER'],
  ]
  for (const [url, code] of cases) {
    it(`${url} → ${code}`, async () => {
      const res = await get(url, f.adminKey)
      expect(res.statusCode, res.body).toBe(400)
      expect(res.json().error.code).toBe(code)
      expect(res.json().error.message).toBeTruthy()
    })
  }

  it('filters recent logins by method, result and user, and pages through a filter', async () => {
    const all = (await get('/v1/analytics/recent-logins?limit=500', f.adminKey)).json()
    const items = all.items as { method: string; success: boolean; userId: string }[]
    const want = items.filter((i) => i.method === 'google' && !i.success)
    expect(want.length).toBeGreaterThan(0)
    const got = await get('/v1/analytics/recent-logins?method=google&success=false', f.adminKey)
    expect(got.statusCode, got.body).toBe(200)
    expect(got.json().items).toEqual(want)
    const user = items[0]!.userId
    const first = (
      await get(`/v1/analytics/recent-logins?userId=${user}&limit=2`, f.adminKey)
    ).json()
    const second = (
      await get(
        `/v1/analytics/recent-logins?userId=${user}&limit=2&cursor=${first.nextCursor}`,
        f.adminKey,
      )
    ).json()
    expect([...first.items, ...second.items]).toEqual(
      items.filter((i) => i.userId === user).slice(0, 4),
    )
  })

  it('accepts current and older names of a zone alike (Asia/Kolkata, Asia/Calcutta, Europe/Kyiv)', async () => {
    const url = (tz: string) => `/v1/analytics/logins?from=${FROM}&to=${TO}&tz=${tz}`
    const kolkata = await get(url('Asia/Kolkata'), f.adminKey)
    expect(kolkata.statusCode, kolkata.body).toBe(200)
    const calcutta = await get(url('Asia/Calcutta'), f.adminKey)
    expect(calcutta.statusCode, calcutta.body).toBe(200)
    expect(kolkata.json().series).toEqual(calcutta.json().series)
    expect(kolkata.json().series[0].start).toMatch(/\+05:30$/)
    expect((await get(url('Europe/Kyiv'), f.adminKey)).statusCode).toBe(200)
  })

  it('clamps limit to 500', async () => {
    const res = await get('/v1/analytics/recent-logins?limit=100000', f.adminKey)
    expect(res.statusCode).toBe(200)
    expect(res.json().items.length).toBe(80)
  })
})

describe('STRATA_ANALYTICS_MAX_RANGE', () => {
  it('refuses a longer range with a 400 naming the maximum', async () => {
    const g = await ingestFixture('anrm', undefined, undefined, {
      analyticsMaxRangeMs: 7 * 86_400_000,
    })
    try {
      const url = (days: number) =>
        `/v1/analytics/logins?from=2026-10-01T00:00:00Z&to=${new Date(Date.parse('2026-10-01T00:00:00Z') + days * 86_400_000).toISOString()}`
      const ok = await g.app.inject({ method: 'GET', url: url(7), headers: bearer(g.adminKey) })
      expect(ok.statusCode, ok.body).toBe(200)
      const res = await g.app.inject({ method: 'GET', url: url(8), headers: bearer(g.adminKey) })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.code).toBe('STRATA_ANALYTICS_INVALID_RANGE')
      expect(res.json().error.message).toMatch(/maximum of 7 days/)
    } finally {
      await g.close()
    }
  })
})

describe('cache and HTTP caching', () => {
  it('ETag + Cache-Control, 304 on If-None-Match; historical answers cached for 10 min', async () => {
    const url = `/v1/analytics/activity?from=${FROM}&to=${TO}&groupBy=entity_type`
    const first = await get(url, f.adminKey)
    expect(first.statusCode).toBe(200)
    expect(first.headers['cache-control']).toBe('private, max-age=600')
    const etag = String(first.headers.etag)
    expect(etag).toMatch(/^".+"$/)
    const again = await get(url, f.adminKey, { 'if-none-match': etag })
    expect(again.statusCode).toBe(304)
    expect(again.body).toBe('')
    const other = await get(url, f.adminKey, { 'if-none-match': '"nope"' })
    expect(other.statusCode).toBe(200)
    // A late event in the range does not show until the entry expires (the 10-minute TTL).
    await ingest(f.writeKey, 'late', 3)
    expect((await get(url, f.adminKey)).body).toBe(first.body)
    // A different tz is a different key.
    const ny = await get(`${url}&tz=America/New_York`, f.adminKey)
    expect(ny.json().totals.activities).toBe(first.json().totals.activities + 1)
  })

  it('a range reaching now is cached only briefly', async () => {
    const res = await get('/v1/analytics/active-users', f.adminKey)
    expect(res.statusCode).toBe(200)
    expect(res.headers['cache-control']).toBe('private, max-age=5')
    const body = res.json()
    expect(body.series.length).toBeGreaterThanOrEqual(30)
    const rec = await get('/v1/analytics/recent-logins', f.adminKey)
    expect(rec.headers['cache-control']).toBe('private, max-age=30')
  })
})

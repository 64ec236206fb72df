import { gzipSync } from 'node:zlib'
import { ProjectStore } from '@strata/events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, count, ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

let f: IngestFixture
const CHROME =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'

beforeAll(async () => {
  f = await ingestFixture('ingest')
})
afterAll(async () => {
  await f?.close()
})

const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const post = (
  url: string,
  payload: unknown,
  headers: Record<string, string> = bearer(f.writeKey),
) => f.app.inject({ method: 'POST', url, headers, payload: payload as object })
const raw = (url: string, body: string | Buffer, headers: Record<string, string>) =>
  f.app.inject({ method: 'POST', url, headers: { ...bearer(f.writeKey), ...headers }, body })
const batch = (events: unknown[], extra: Record<string, unknown> = {}) =>
  post('/v1/events/batch', { events, ...extra })
const login = (over: Record<string, unknown> = {}) => ({
  type: 'login',
  userId: 'u1',
  method: 'email',
  success: true,
  ...over,
})
const firstError = (res: { json(): any }) => res.json().rejected[0]?.error.code

describe('auth', () => {
  it('401 without credentials, with an unknown key, with a malformed header', async () => {
    for (const headers of [
      {},
      bearer('sk_w_' + 'x'.repeat(43)),
      bearer('nope'),
      { authorization: 'Token abc' },
    ]) {
      const res = await post('/v1/logins', login(), headers)
      expect(res.statusCode).toBe(401)
      expect(res.json().error.code).toMatch(/^STRATA_AUTH_(MISSING|INVALID)$/)
    }
  })

  it('403 for a valid credential of the wrong kind', async () => {
    expect((await post('/v1/logins', login(), bearer(f.adminKey))).statusCode).toBe(403)
    expect((await post('/v1/logins', login(), bearer(ADMIN_TOKEN))).statusCode).toBe(403)
    const res = await post('/v1/projects', { name: 'x' }, bearer(f.writeKey))
    expect(res.statusCode).toBe(403)
    expect(res.json().error.code).toBe('STRATA_AUTH_FORBIDDEN')
    expect(
      (await f.app.inject({ method: 'GET', url: '/v1/projects', headers: bearer(f.adminKey) }))
        .statusCode,
    ).toBe(403)
  })

  it('revocation is immediate here and within 1 s on another instance', async () => {
    const created = await post(
      `/v1/projects/${f.projectId}/keys`,
      { kind: 'write' },
      bearer(ADMIN_TOKEN),
    )
    expect(created.statusCode).toBe(201)
    const { key, secret } = created.json()
    expect(secret).toMatch(/^sk_w_/)
    const other = new ProjectStore(f.db) // a second instance's view
    expect(await other.verifyKey(secret)).toMatchObject({ projectId: f.projectId, kind: 'write' })
    expect((await post('/v1/logins', login(), bearer(secret))).statusCode).toBe(202)
    const del = await f.app.inject({
      method: 'DELETE',
      url: `/v1/keys/${key.id}`,
      headers: bearer(ADMIN_TOKEN),
    })
    expect(del.statusCode).toBe(200)
    expect(del.json().key.revokedAt).not.toBeNull()
    expect((await post('/v1/logins', login(), bearer(secret))).statusCode).toBe(401)
    await new Promise((r) => setTimeout(r, 1100))
    expect(await other.verifyKey(secret)).toBeNull()
  })
})

describe('projects and keys', () => {
  it('creates, lists, and 404s unknown ids', async () => {
    const res = await post('/v1/projects', { name: 'second' }, bearer(ADMIN_TOKEN))
    expect(res.statusCode).toBe(201)
    expect(res.json()).toMatchObject({
      project: { name: 'second' },
      keys: { write: expect.stringMatching(/^sk_w_/), admin: expect.stringMatching(/^sk_a_/) },
    })
    const list = await f.app.inject({
      method: 'GET',
      url: '/v1/projects',
      headers: bearer(ADMIN_TOKEN),
    })
    expect(list.json().items.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['ingest', 'second']),
    )
    const keys = await f.app.inject({
      method: 'GET',
      url: `/v1/projects/${f.projectId}/keys`,
      headers: bearer(ADMIN_TOKEN),
    })
    expect(keys.json().items.length).toBeGreaterThanOrEqual(2)
    expect(JSON.stringify(keys.json())).not.toContain(f.writeKey)
    const missing = await post(
      '/v1/projects/00000000-0000-0000-0000-000000000000/keys',
      { kind: 'admin' },
      bearer(ADMIN_TOKEN),
    )
    expect(missing.statusCode).toBe(404)
    expect(
      (await f.app.inject({ method: 'DELETE', url: '/v1/keys/nope', headers: bearer(ADMIN_TOKEN) }))
        .statusCode,
    ).toBe(404)
    expect((await post('/v1/projects', { name: '' }, bearer(ADMIN_TOKEN))).statusCode).toBe(400)
  })
})

describe('single events', () => {
  it('POST /v1/logins stores the login with UA enrichment and answers 202 after commit', async () => {
    const res = await post(
      '/v1/logins',
      {
        messageId: 'l-1',
        userId: 'u1',
        email: 'a@b.c',
        method: 'google',
        success: true,
        sessionId: 's-login-1',
        userAgent: CHROME,
      },
      // Not a trusted proxy here: X-Forwarded-For is ignored.
      { ...bearer(f.writeKey), 'x-forwarded-for': '198.51.100.9' },
    )
    expect(res.statusCode).toBe(202)
    expect(res.json()).toEqual({ messageId: 'l-1' })
    const row = await f.db.query(
      `SELECT method, device_type, browser, os, host(ip) AS ip, user_agent FROM login_events WHERE message_id = 'l-1'`,
    )
    expect(row.rows[0]).toEqual({
      method: 'google',
      device_type: 'desktop',
      browser: 'Chrome',
      os: 'macOS',
      ip: '127.0.0.1',
      user_agent: CHROME,
    })
    // A login's sessionId is stored with the login and opens no session.
    const s = await f.app.inject({
      method: 'GET',
      url: '/v1/sessions/s-login-1',
      headers: bearer(f.adminKey),
    })
    expect(s.statusCode).toBe(404)
  })

  it('POST /v1/activities stores metadata and generates a messageId when absent', async () => {
    const res = await post('/v1/activities', {
      userId: 'u2',
      action: 'update',
      entityType: 'doc',
      entityId: '42',
      metadata: { fields: ['title'], n: 1e308 },
    })
    expect(res.statusCode).toBe(202)
    const id = res.json().messageId
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
    const row = await f.db.query(
      `SELECT action, entity_id, metadata FROM activity_logs WHERE message_id = $1`,
      [id],
    )
    expect(row.rows[0]).toEqual({
      action: 'update',
      entity_id: '42',
      metadata: { fields: ['title'], n: 1e308 },
    })
  })

  it('rejects an invalid single event with 400 and a stable code', async () => {
    const res = await post('/v1/logins', { userId: 'u1', method: 'email' })
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toMatchObject({
      code: 'STRATA_EVENT_INVALID',
      message: '/success is required',
    })
    const bad = await post('/v1/logins', login({ ip: 'not-an-ip' }))
    expect(bad.json().error.code).toBe('STRATA_EVENT_INVALID_IP')
  })

  it('corrects client clock skew: ts = receivedAt - (sentAt - timestamp)', async () => {
    // The client's clock runs 1 h ahead; the event happened 10 s before sending.
    const skew = 3_600_000
    const now = Date.now()
    const res = await post('/v1/activities', {
      messageId: 'skew-1',
      userId: 'u',
      action: 'view',
      timestamp: new Date(now + skew - 10_000).toISOString(),
      sentAt: new Date(now + skew).toISOString(),
    })
    expect(res.statusCode).toBe(202)
    const row = await f.db.query<{ ts: Date }>(
      `SELECT ts FROM activity_logs WHERE message_id = 'skew-1'`,
    )
    expect(Math.abs(row.rows[0]!.ts.getTime() - (now - 10_000))).toBeLessThan(2000)
  })
})

describe('client IP behind a trusted proxy', () => {
  it('takes the client address from X-Forwarded-For only when the peer is trusted', async () => {
    const g = await ingestFixture('ingproxy', undefined, undefined, { trustProxy: ['127.0.0.1'] })
    try {
      const res = await g.app.inject({
        method: 'POST',
        url: '/v1/logins',
        headers: {
          authorization: `Bearer ${g.writeKey}`,
          'x-forwarded-for': '198.51.100.9, 127.0.0.1',
        },
        payload: { messageId: 'px-1', userId: 'u', method: 'email', success: true },
      })
      expect(res.statusCode).toBe(202)
      const row = await g.db.query(
        `SELECT host(ip) AS ip FROM login_events WHERE message_id = 'px-1'`,
      )
      expect(row.rows[0]).toEqual({ ip: '198.51.100.9' })
    } finally {
      await g.close()
    }
  })
})

describe('batch', () => {
  it('keeps valid items, reports invalid ones per index, counts duplicates', async () => {
    const res = await batch([
      login({ messageId: 'b-1' }),
      { type: 'activity', messageId: 'b-2', userId: 'u', action: 'view' },
      { type: 'login', userId: 'u' },
      login({ messageId: 'b-1', userId: 'someone-else' }),
      { type: 'nope' },
      { type: 'track', event: 'Clicked', userId: 'u', messageId: 'b-3' },
    ])
    expect(res.statusCode).toBe(202)
    const body = res.json()
    expect(body.accepted).toBe(3)
    expect(body.duplicates).toBe(1)
    expect(body.rejected.map((r: { index: number }) => r.index)).toEqual([2, 4])
    expect(body.rejected[1].error.code).toBe('STRATA_EVENT_UNKNOWN_TYPE')
    const kept = await f.db.query(`SELECT user_id FROM login_events WHERE message_id = 'b-1'`)
    expect(kept.rows).toEqual([{ user_id: 'u1' }])
  })

  it('a resent id with a different payload is acknowledged and stored once (first write wins)', async () => {
    expect((await batch([login({ messageId: 'resend-1', method: 'email' })])).json().accepted).toBe(
      1,
    )
    const again = await batch([login({ messageId: 'resend-1', method: 'okta_saml' })])
    expect(again.statusCode).toBe(202)
    expect(again.json()).toEqual({ accepted: 0, duplicates: 1, rejected: [] })
    const rows = await f.db.query(`SELECT method FROM login_events WHERE message_id = 'resend-1'`)
    expect(rows.rows).toEqual([{ method: 'email' }])
  })

  it('answers 400 with the same body when every item is invalid', async () => {
    const res = await batch([{ type: 'login' }, { type: 'activity' }])
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({
      accepted: 0,
      duplicates: 0,
      rejected: [{ index: 0 }, { index: 1 }],
    })
  })

  it('empty batch 400, more than 100 items 413, body over 500 KB 413 (also after gunzip)', async () => {
    const empty = await batch([])
    expect([empty.statusCode, empty.json().error.code]).toEqual([400, 'STRATA_BATCH_EMPTY'])
    const many = await batch(Array.from({ length: 101 }, () => login()))
    expect([many.statusCode, many.json().error.code]).toEqual([413, 'STRATA_BATCH_TOO_LARGE'])
    const big = JSON.stringify({ events: [login({ failureReason: 'x'.repeat(600_000) })] })
    const tooBig = await raw('/v1/events/batch', big, { 'content-type': 'application/json' })
    expect([tooBig.statusCode, tooBig.json().error.code]).toEqual([413, 'STRATA_BODY_TOO_LARGE'])
    const bomb = await raw('/v1/events/batch', gzipSync(big), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    })
    expect([bomb.statusCode, bomb.json().error.code]).toEqual([413, 'STRATA_BODY_TOO_LARGE'])
  })
})

describe('bad input classes', () => {
  it('truncated JSON → 400 STRATA_MALFORMED_JSON', async () => {
    const res = await raw('/v1/events/batch', '{"events":[{"type":"login","userId":"u"', {
      'content-type': 'application/json',
    })
    expect([res.statusCode, res.json().error.code]).toEqual([400, 'STRATA_MALFORMED_JSON'])
  })

  it('wrong content type → 415; unknown content encoding → 415; corrupt gzip → 400', async () => {
    const xml = await raw('/v1/logins', '<login/>', { 'content-type': 'application/xml' })
    expect([xml.statusCode, xml.json().error.code]).toEqual([415, 'STRATA_UNSUPPORTED_MEDIA_TYPE'])
    const br = await raw('/v1/logins', '{}', {
      'content-type': 'application/json',
      'content-encoding': 'br',
    })
    expect(br.statusCode).toBe(415)
    const corrupt = await raw('/v1/logins', Buffer.from('not gzip'), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    })
    expect([corrupt.statusCode, corrupt.json().error.code]).toEqual([400, 'STRATA_MALFORMED_JSON'])
  })

  it('gzip is decoded whatever the content type says (RudderStack sends x-www-form-urlencoded)', async () => {
    const body = gzipSync(JSON.stringify({ events: [login({ messageId: 'gz-1' })] }))
    const res = await raw('/v1/events/batch', body, {
      'content-type': 'application/x-www-form-urlencoded',
      'content-encoding': 'gzip',
    })
    expect(res.statusCode).toBe(202)
    expect(await count(f.db, `login_events WHERE message_id = 'gz-1'`)).toBe(1)
  })

  it('deep nesting → STRATA_EVENT_TOO_DEEP, neighbours kept', async () => {
    let deep: unknown = 'leaf'
    for (let i = 0; i < 100; i++) deep = { a: deep }
    const res = await batch([
      { type: 'activity', userId: 'u', action: 'x', metadata: deep as object },
      login(),
    ])
    expect(firstError(res)).toBe('STRATA_EVENT_TOO_DEEP')
    expect(res.json().accepted).toBe(1)
    // Very deep raw JSON (far beyond any recursion limit) is still a clean 4xx.
    const hostile = `{"events":[{"type":"activity","userId":"u","action":"x","metadata":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`
    const h = await raw('/v1/events/batch', hostile, { 'content-type': 'application/json' })
    expect(h.statusCode).toBe(400)
  })

  it('__proto__, constructor and prototype keys → STRATA_EVENT_FORBIDDEN_KEY', async () => {
    const body =
      '{"events":[{"type":"activity","userId":"u","action":"x","metadata":{"__proto__":{"admin":true}}},{"type":"login","userId":"u","method":"email","success":true,"constructor":{"prototype":1}}]}'
    const res = await raw('/v1/events/batch', body, { 'content-type': 'application/json' })
    expect(res.statusCode).toBe(400)
    expect(res.json().rejected.map((r: any) => r.error.code)).toEqual([
      'STRATA_EVENT_FORBIDDEN_KEY',
      'STRATA_EVENT_FORBIDDEN_KEY',
    ])
    expect(({} as Record<string, unknown>).admin).toBeUndefined()
    const top = await raw('/v1/events/batch', '{"__proto__":{},"events":[]}', {
      'content-type': 'application/json',
    })
    expect(top.json().error.code).toBe('STRATA_EVENT_FORBIDDEN_KEY')
  })

  it('NUL characters and lone surrogates → STRATA_EVENT_INVALID_STRING', async () => {
    const body =
      '{"events":[{"type":"login","userId":"a\\u0000b","method":"email","success":true},{"type":"activity","userId":"u","action":"x","metadata":{"s":"\\ud800"}},{"type":"activity","userId":"u","action":"x","metadata":{"k\\udc00":1}},{"type":"activity","userId":"u","action":"x","metadata":{"ok":"\\ud83d\\ude00"}}]}'
    const res = await raw('/v1/events/batch', body, { 'content-type': 'application/json' })
    expect(res.statusCode).toBe(202)
    expect(res.json().rejected.map((r: any) => [r.index, r.error.code])).toEqual([
      [0, 'STRATA_EVENT_INVALID_STRING'],
      [1, 'STRATA_EVENT_INVALID_STRING'],
      [2, 'STRATA_EVENT_INVALID_STRING'],
    ])
    expect(res.json().accepted).toBe(1) // a valid surrogate pair (emoji) is fine
  })

  it('NaN, infinity, year > 9999, far-future and non-ISO timestamps are rejected', async () => {
    const future = new Date(Date.now() + 25 * 3_600_000).toISOString()
    const cases = [
      'NaN',
      'infinity',
      '+010000-01-01T00:00:00Z',
      '10000-01-01T00:00:00Z',
      '2026-02-30T00:00:00Z',
      '2026-01-01T00:00:00',
      1700000000000,
      future,
      '1900-01-01T00:00:00Z',
    ]
    const res = await batch(cases.map((timestamp) => login({ timestamp })))
    expect(res.statusCode).toBe(400)
    const codes = res.json().rejected.map((r: any) => r.error.code)
    expect(codes.slice(0, 6)).toEqual(Array(6).fill('STRATA_EVENT_INVALID_TIMESTAMP'))
    expect(codes[6]).toBe('STRATA_EVENT_INVALID') // a number is not a string
    expect(codes.slice(7)).toEqual([
      'STRATA_EVENT_TIMESTAMP_OUT_OF_RANGE',
      'STRATA_EVENT_TIMESTAMP_OUT_OF_RANGE',
    ])
  })

  it('huge numbers: 1e400 (Infinity after JSON.parse) → STRATA_EVENT_NUMBER_OUT_OF_RANGE', async () => {
    const body =
      '{"events":[{"type":"activity","userId":"u","action":"x","metadata":{"n":1e400}},{"type":"activity","userId":"u","action":"x","metadata":{"n":-1e400}}]}'
    const res = await raw('/v1/events/batch', body, { 'content-type': 'application/json' })
    expect(res.json().rejected.map((r: any) => r.error.code)).toEqual([
      'STRATA_EVENT_NUMBER_OUT_OF_RANGE',
      'STRATA_EVENT_NUMBER_OUT_OF_RANGE',
    ])
  })

  it('duplicate ids inside one batch are stored once', async () => {
    const res = await batch([
      login({ messageId: 'dup-x' }),
      login({ messageId: 'dup-x' }),
      login({ messageId: 'dup-x' }),
    ])
    expect(res.json()).toEqual({ accepted: 1, duplicates: 2, rejected: [] })
    expect(await count(f.db, `login_events WHERE message_id = 'dup-x'`)).toBe(1)
  })
})

describe('Segment-compatible routes', () => {
  const basic = () => ({
    authorization: `Basic ${Buffer.from(`${f.writeKey}:`).toString('base64')}`,
  })

  it('track, identify, page, screen, group, alias answer 200 {"success":true}', async () => {
    const messages: Record<string, object> = {
      track: { event: 'Signed Up', userId: 'seg-u', properties: { plan: 'pro' } },
      identify: { userId: 'seg-u', traits: { email: 'x@y.z' } },
      page: { anonymousId: 'anon-1', name: 'Home', properties: { path: '/' } },
      screen: { userId: 'seg-u', name: 'Dashboard' },
      group: { userId: 'seg-u', groupId: 'g-1', traits: { name: 'Acme' } },
      alias: { userId: 'seg-u', previousId: 'anon-1' },
    }
    for (const [type, msg] of Object.entries(messages)) {
      const res = await post(`/v1/${type}`, { ...msg, messageId: `seg-${type}` }, basic())
      expect([type, res.statusCode, res.json()]).toEqual([type, 200, { success: true }])
    }
    const rows = await f.db.query(
      `SELECT type, name FROM events WHERE message_id LIKE 'seg-%' ORDER BY type`,
    )
    expect(rows.rows).toEqual([
      { type: 'alias', name: null },
      { type: 'group', name: 'g-1' },
      { type: 'identify', name: null },
      { type: 'page', name: 'Home' },
      { type: 'screen', name: 'Dashboard' },
      { type: 'track', name: 'Signed Up' },
    ])
    const bad = await post('/v1/track', { userId: 'u' }, basic())
    expect([bad.statusCode, bad.json().error.message]).toEqual([400, '/event is required'])
    const anon = await post('/v1/identify', { traits: {} }, basic())
    expect(anon.json().error.message).toBe('userId or anonymousId is required')
  })

  it('/v1/batch takes more than 100 messages (Segment limits by size, not count)', async () => {
    const batch = Array.from({ length: 150 }, (_, i) => ({
      type: 'track',
      event: 'Many',
      userId: 'u',
      messageId: `many-${i}`,
    }))
    const res = await post('/v1/batch', { batch }, basic())
    expect([res.statusCode, res.json()]).toEqual([200, { success: true }])
    expect(await count(f.db, `events WHERE message_id LIKE 'many-%'`)).toBe(150)
  })

  it('/v1/batch applies the batch-level context to messages without one', async () => {
    const res = await post(
      '/v1/batch',
      {
        context: { library: { name: 'http' } },
        batch: [
          { type: 'track', event: 'Ctx', userId: 'u', messageId: 'ctx-1' },
          { type: 'track', event: 'Ctx', userId: 'u', messageId: 'ctx-2', context: { own: true } },
        ],
      },
      basic(),
    )
    expect(res.statusCode).toBe(200)
    const rows = await f.db.query(
      `SELECT message_id, context FROM events WHERE message_id LIKE 'ctx-%' ORDER BY message_id`,
    )
    expect(rows.rows).toEqual([
      { message_id: 'ctx-1', context: { library: { name: 'http' } } },
      { message_id: 'ctx-2', context: { own: true } },
    ])
  })

  it('/v1/batch authenticates by body writeKey and stores each message once', async () => {
    const payload = {
      writeKey: f.writeKey,
      sentAt: new Date().toISOString(),
      batch: [
        {
          type: 'track',
          event: 'A',
          userId: 'u',
          messageId: 'sb-1',
          timestamp: new Date().toISOString(),
        },
        { type: 'identify', anonymousId: 'an', messageId: 'sb-2' },
      ],
    }
    const res = await post('/v1/batch', payload, {})
    expect([res.statusCode, res.json()]).toEqual([200, { success: true }])
    const again = await post('/v1/batch', payload, {})
    expect(again.statusCode).toBe(200)
    expect(await count(f.db, `events WHERE message_id IN ('sb-1','sb-2')`)).toBe(2)
    expect((await post('/v1/batch', { ...payload, writeKey: 'wrong' }, {})).statusCode).toBe(401)
  })
})

describe('sessions', () => {
  it('create, validate (cached), touch, end: admin key, ids generated by Strata', async () => {
    const admin = bearer(f.adminKey)
    const created = await post('/v1/sessions', { userId: 'su' }, { ...admin, 'user-agent': CHROME })
    expect(created.statusCode).toBe(201)
    expect(created.json().session).toMatchObject({
      userId: 'su',
      endedAt: null,
      browser: 'Chrome',
    })
    const id: string = created.json().session.sessionId
    expect(id).toMatch(/^ses_[A-Za-z0-9_-]{43}$/)
    const exp = Date.parse(created.json().session.expiresAt) - Date.now()
    expect(exp).toBeGreaterThan(6.9 * 86_400_000)
    const chosen = await post('/v1/sessions', { userId: 'su', sessionId: 'sess-1' }, admin)
    expect([chosen.statusCode, chosen.json().error.code]).toEqual([400, 'STRATA_SESSION_INVALID'])
    const get = await f.app.inject({ method: 'GET', url: `/v1/sessions/${id}`, headers: admin })
    expect(get.json()).toMatchObject({ valid: true, session: { sessionId: id } })
    const touched = await post(`/v1/sessions/${id}/touch`, {}, admin)
    expect(touched.statusCode).toBe(200)
    const del = await f.app.inject({ method: 'DELETE', url: `/v1/sessions/${id}`, headers: admin })
    expect(del.statusCode).toBe(204)
    const gone = await f.app.inject({ method: 'GET', url: `/v1/sessions/${id}`, headers: admin })
    expect([gone.statusCode, gone.json().error.code]).toEqual([404, 'STRATA_SESSION_NOT_FOUND'])
    const other = await f.app.inject({
      method: 'GET',
      url: '/v1/sessions/unknown%00id',
      headers: admin,
    })
    expect([other.statusCode, other.json().error.code]).toEqual([400, 'STRATA_VALIDATION_FAILED'])
  })
})

describe('metrics', () => {
  it('/metrics exposes the writer state and flush durations', async () => {
    await post('/v1/activities', { userId: 'm', action: 'view' })
    const res = await f.app.inject({ method: 'GET', url: '/metrics' })
    expect(res.statusCode).toBe(200)
    const inserted = /strata_ingest_writer\{stat="inserted"\} (\d+)/.exec(res.body)
    expect(Number(inserted?.[1])).toBeGreaterThan(0)
    expect(res.body).toMatch(/strata_ingest_flush_duration_seconds_count \d+/)
  })
})

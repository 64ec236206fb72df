import { spawnSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyRequest } from 'fastify'
import { cliEntry, repoRoot, tsNodeArgs } from '../../../test/support/spawn.js'
import { ingestContext } from '../src/http/ingest-context.js'
import { ADMIN_TOKEN, ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

let f: IngestFixture
beforeAll(async () => {
  f = await ingestFixture('roughedges')
})
afterAll(async () => {
  await f?.close()
})

const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

describe('messages a new user reads', () => {
  it('a credential of the wrong kind: the route says what it takes and what was sent', async () => {
    const admin = await f.app.inject({
      method: 'POST',
      url: '/v1/logins',
      headers: bearer(f.adminKey),
      payload: { type: 'login', userId: 'u1', method: 'email', success: true },
    })
    expect(admin.statusCode).toBe(403)
    expect(admin.json().error.message).toBe(
      "This route takes a project's write key; you sent an admin key",
    )
    const op = await f.app.inject({
      method: 'GET',
      url: '/v1/projects',
      headers: bearer(f.writeKey),
    })
    expect(op.statusCode).toBe(403)
    expect(op.json().error.message).toBe(
      'This route takes the operator token; you sent a write key',
    )
  })

  it('415 says which content types are accepted, with or without a Content-Type', async () => {
    for (const headers of [{}, { 'content-type': 'application/xml' }]) {
      const res = await f.app.inject({
        method: 'POST',
        url: '/v1/projects',
        headers: { ...bearer(ADMIN_TOKEN), ...headers },
        body: '{"name":"x"}',
      })
      expect(res.statusCode).toBe(415)
      expect(res.json().error).toMatchObject({
        code: 'STRATA_UNSUPPORTED_MEDIA_TYPE',
        message: expect.stringContaining('Content-Type: application/json'),
      })
    }
  })

  it('keys create --kind reader says the kind is invalid and lists the kinds', () => {
    const r = spawnSync(
      process.execPath,
      [...tsNodeArgs, cliEntry, 'keys', 'create', '--project', 'p1', '--kind', 'reader'],
      { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 },
    )
    expect(r.status).toBe(1)
    expect(r.stderr).toBe(
      'strata keys create: --kind "reader" is not a key kind; kinds: write (ingestion), admin (analytics)\n',
    )
  })
})

describe('the root of the service', () => {
  it('GET / redirects to the dashboard', async () => {
    const res = await f.app.inject({ method: 'GET', url: '/' })
    expect(res.statusCode).toBe(302)
    expect(res.headers.location).toBe('/dashboard/')
  })
})

describe('the user agent of an event', () => {
  const CURL = 'curl/8.5.0'
  const CHROME =
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'

  it('a login sent server to server without userAgent is not attributed to the HTTP client', async () => {
    const res = await f.app.inject({
      method: 'POST',
      url: '/v1/logins',
      headers: { ...bearer(f.writeKey), 'user-agent': CURL },
      payload: { messageId: 'ua-s2s', userId: 'u1', method: 'email', success: true },
    })
    expect(res.statusCode).toBe(202)
    const { rows } = await f.db.query(
      `SELECT device_type, user_agent FROM login_events WHERE message_id = 'ua-s2s'`,
    )
    expect(rows[0]).toMatchObject({ user_agent: null })
    expect(rows[0]?.device_type).not.toBe('bot')
  })

  it('the Segment (browser SDK) routes still fall back to the request’s User-Agent', () => {
    const request = (url: string) =>
      ({
        url,
        routeOptions: { url },
        ip: '127.0.0.1',
        headers: { 'user-agent': CHROME },
        principal: { type: 'key', kind: 'write', projectId: 'p1', keyId: 'k1' },
      }) as unknown as FastifyRequest
    expect(ingestContext(request('/v1/track')).userAgent).toBe(CHROME)
    expect(ingestContext(request('/v1/batch')).userAgent).toBe(CHROME)
    expect(ingestContext(request('/v1/logins')).userAgent).toBeNull()
    expect(ingestContext(request('/v1/events/batch')).userAgent).toBeNull()
  })
})

describe('a timestamp outside the window', () => {
  it('the message says the window', async () => {
    const res = await f.app.inject({
      method: 'POST',
      url: '/v1/logins',
      headers: bearer(f.writeKey),
      payload: {
        messageId: 'old-1',
        userId: 'u1',
        method: 'email',
        success: true,
        timestamp: '2001-01-01T00:00:00Z',
      },
    })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.message).toMatch(
      /outside the accepted window \d{4}-\d\d-\d\dT[\d:.]+Z – \d{4}-\d\d-\d\dT[\d:.]+Z \(at most \d+ days in the past, \d+ h in the future\)/,
    )
  })
})

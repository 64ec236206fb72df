import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test/support/redis.js'
import { AuthFailureLimiter } from '../src/auth/failure-limiter.js'
import { loadConfig } from '../src/config.js'
import {
  ingestFixture,
  type IngestFixture,
  type IngestTestOptions,
} from './support/ingest-fixture.js'

const madeUpKey = () => `sk_w_${randomBytes(32).toString('base64url')}`
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const login = { userId: 'u', method: 'email', success: true }

const fixtures: IngestFixture[] = []
const prefixes: string[] = []
afterAll(async () => {
  await Promise.all(fixtures.map((f) => f.close()))
  await Promise.all(prefixes.map((p) => deletePrefix(p)))
})

async function fixture(
  config: { max: number; windowMs: number },
  options: IngestTestOptions = {},
): Promise<IngestFixture> {
  const f = await ingestFixture('authfail', { rateLimit: false, ...options }, undefined, {
    trustProxy: true,
    authFailureLimit: config,
  })
  fixtures.push(f)
  return f
}

function post(f: IngestFixture, headers: Record<string, string>, ip = '203.0.113.7') {
  return f.app.inject({
    method: 'POST',
    url: '/v1/logins',
    headers: { ...headers, 'x-forwarded-for': ip },
    payload: login,
  })
}

describe('failed authentications per client address', () => {
  it('after 50 failures in the window: 429 + Retry-After before any key lookup, until it passes', async () => {
    const f = await fixture({ max: 50, windowMs: 1500 })
    const lookups = vi.spyOn(f.app.services.projects, 'verifyKey')
    for (let i = 0; i < 50; i++) {
      // Unknown keys, no credentials at all and malformed headers all count.
      const headers = i % 3 === 0 ? bearer(madeUpKey()) : i % 3 === 1 ? {} : bearer('nope')
      expect((await post(f, headers)).statusCode).toBe(401)
    }
    const keyLookups = lookups.mock.calls.length
    for (const headers of [bearer(madeUpKey()), bearer(f.writeKey), {}]) {
      const res = await post(f, headers)
      expect(res.statusCode).toBe(429)
      expect(res.json()).toMatchObject({ error: { code: 'STRATA_RATE_LIMITED' } })
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1)
      expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(2)
    }
    expect(lookups.mock.calls.length).toBe(keyLookups)
    // Other addresses are not affected (TRUST_PROXY: the forwarded address is the client's).
    expect((await post(f, bearer(f.writeKey), '203.0.113.8')).statusCode).toBe(202)
    // Once the window has passed, the address may try again.
    await new Promise((r) => setTimeout(r, 1600))
    expect((await post(f, bearer(f.writeKey))).statusCode).toBe(202)
  })

  it('counts 403s, every route class, and Segment body writeKeys', async () => {
    const f = await fixture({ max: 4, windowMs: 60_000 })
    const ip = '203.0.113.20'
    expect((await post(f, bearer(f.adminKey), ip)).statusCode).toBe(403)
    const analytics = await f.app.inject({
      method: 'GET',
      url: '/v1/analytics/logins',
      headers: { ...bearer(madeUpKey()), 'x-forwarded-for': ip },
    })
    expect(analytics.statusCode).toBe(401)
    const imports = await f.app.inject({
      method: 'GET',
      url: '/v1/imports',
      headers: { 'x-forwarded-for': ip },
    })
    expect(imports.statusCode).toBe(401)
    const segment = await f.app.inject({
      method: 'POST',
      url: '/v1/batch',
      headers: { 'x-forwarded-for': ip },
      payload: { writeKey: madeUpKey(), batch: [{ type: 'track', event: 'e', userId: 'u' }] },
    })
    expect(segment.statusCode).toBe(401)
    const limited = await f.app.inject({
      method: 'GET',
      url: '/v1/performance',
      headers: { 'x-forwarded-for': ip },
    })
    expect(limited.statusCode).toBe(429)
    expect(limited.headers['retry-after']).toBeDefined()
    // Healthy routes without auth are not limited.
    const health = await f.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-forwarded-for': ip },
    })
    expect(health.statusCode).toBe(200)
  })

  it('a body-writeKey request refused before its key is known counts too (413, not JSON)', async () => {
    const f = await fixture({ max: 3, windowMs: 60_000 })
    const ip = '203.0.113.40'
    const segment = (payload: string) =>
      f.app.inject({
        method: 'POST',
        url: '/v1/batch',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
        payload,
      })
    expect((await segment('x'.repeat(70_000))).statusCode).toBe(413)
    expect((await segment('{"writeKey":')).statusCode).toBe(400)
    expect((await segment('{"batch":[]}')).statusCode).toBe(401)
    const good = JSON.stringify({
      writeKey: f.writeKey,
      batch: [{ type: 'track', event: 'e', userId: 'u' }],
    })
    expect((await segment(good)).statusCode).toBe(429)
    expect((await post(f, bearer(f.writeKey), '203.0.113.41')).statusCode).toBe(202)
  })

  it('a known body writeKey whose batch is invalid is not a failure', async () => {
    const f = await fixture({ max: 1, windowMs: 60_000 })
    for (let i = 0; i < 3; i++) {
      const res = await f.app.inject({
        method: 'POST',
        url: '/v1/batch',
        headers: { 'x-forwarded-for': '203.0.113.50' },
        payload: { writeKey: f.writeKey, batch: [] },
      })
      expect(res.statusCode).toBe(400)
    }
  })

  it('without TRUST_PROXY a forwarded address is not believed', async () => {
    const f = await ingestFixture('authfail', { rateLimit: false }, undefined, {
      authFailureLimit: { max: 2, windowMs: 60_000 },
    })
    fixtures.push(f)
    for (const ip of ['198.51.100.1', '198.51.100.2'])
      expect((await post(f, bearer(madeUpKey()), ip)).statusCode).toBe(401)
    expect((await post(f, bearer(f.writeKey), '198.51.100.3')).statusCode).toBe(429)
  })

  it('with Redis, instances share the counters', async () => {
    const redis = new Redis(redisUrl())
    const nameSpace = uniquePrefix('authfail')
    prefixes.push(nameSpace)
    try {
      const options = { redis, authFailures: { nameSpace } }
      const a = await fixture({ max: 6, windowMs: 60_000 }, options)
      const b = await fixture({ max: 6, windowMs: 60_000 }, options)
      const ip = '203.0.113.30'
      for (let i = 0; i < 3; i++) {
        expect((await post(a, bearer(madeUpKey()), ip)).statusCode).toBe(401)
        expect((await post(b, bearer(madeUpKey()), ip)).statusCode).toBe(401)
      }
      // Six failures between them: both refuse the address, even with a good key.
      expect((await post(a, bearer(a.writeKey), ip)).statusCode).toBe(429)
      expect((await post(b, bearer(b.writeKey), ip)).statusCode).toBe(429)
      expect(await redis.get(`${nameSpace}${ip}`)).toBe('6')
      expect(await redis.pttl(`${nameSpace}${ip}`)).toBeGreaterThan(50_000)
    } finally {
      redis.disconnect()
    }
  })
})

describe('AuthFailureLimiter', () => {
  it('groups IPv6 addresses by /64, and 0 disables it', async () => {
    const l = new AuthFailureLimiter({ max: 2, windowMs: 60_000 })
    expect(await l.fail('2001:db8:1:2::1')).toBe(0)
    expect(await l.fail('2001:db8:1:2:ffff::9')).toBeGreaterThan(0)
    expect(await l.retryAfter('2001:db8:1:2::77')).toBeGreaterThan(0)
    expect(await l.retryAfter('2001:db8:1:3::1')).toBe(0)
    const off = new AuthFailureLimiter({ max: 0, windowMs: 60_000 })
    for (let i = 0; i < 5; i++) await off.fail('192.0.2.1')
    expect(await off.retryAfter('192.0.2.1')).toBe(0)
  })

  it('keeps memory bounded: the oldest addresses go first', async () => {
    const l = new AuthFailureLimiter({ max: 1, windowMs: 60_000, maxTrackedAddresses: 3 })
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4']) await l.fail(ip)
    expect(await l.retryAfter('192.0.2.1')).toBe(0)
    expect(await l.retryAfter('192.0.2.4')).toBeGreaterThan(0)
  })

  it('lets requests through while Redis is unreachable', async () => {
    const dead = new Redis({
      port: 1,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    })
    dead.on('error', () => {})
    const warn = vi.fn()
    const l = new AuthFailureLimiter({ max: 1, windowMs: 60_000, redis: dead, logger: { warn } })
    expect(await l.fail('192.0.2.9')).toBe(0)
    expect(await l.retryAfter('192.0.2.9')).toBe(0)
    expect(warn).toHaveBeenCalledTimes(1)
    dead.disconnect()
  })
})

describe('configuration', () => {
  it('reads STRATA_AUTH_FAILURE_LIMIT/WINDOW and STRATA_RATE_LIMIT_*', () => {
    expect(loadConfig({})).toMatchObject({
      authFailureLimit: { max: 50, windowMs: 60_000 },
      rateLimits: {},
    })
    expect(
      loadConfig({
        STRATA_AUTH_FAILURE_LIMIT: '10',
        STRATA_AUTH_FAILURE_WINDOW: '5m',
        STRATA_RATE_LIMIT_ANALYTICS: '100/1m',
        STRATA_RATE_LIMIT_INGEST: 'off',
      }),
    ).toMatchObject({
      authFailureLimit: { max: 10, windowMs: 300_000 },
      rateLimits: { analytics: { max: 100, timeWindow: 60_000 }, ingest: false },
    })
    expect(() => loadConfig({ STRATA_RATE_LIMIT_IMPORTS: '100' })).toThrow(
      /STRATA_RATE_LIMIT_IMPORTS: must be <max>\/<window>/,
    )
    expect(() => loadConfig({ STRATA_AUTH_FAILURE_LIMIT: '-1' })).toThrow(
      /STRATA_AUTH_FAILURE_LIMIT/,
    )
  })
})

describe('over real HTTP', () => {
  it('a refused address gets 429 before its body is read, and the connection is closed', async () => {
    const f = await fixture({ max: 1, windowMs: 60_000 })
    await f.app.listen({ port: 0, host: '127.0.0.1' })
    const base = `http://127.0.0.1:${(f.app.server.address() as AddressInfo).port}`
    const send = () =>
      fetch(`${base}/v1/events/batch`, {
        method: 'POST',
        headers: { ...bearer(madeUpKey()), 'content-type': 'application/json' },
        body: new Uint8Array(5_000_000),
      })
    expect((await send()).status).toBe(401)
    const res = await send()
    expect(res.status).toBe(429)
    expect(res.headers.get('connection')).toBe('close')
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/)
    expect(await res.json()).toMatchObject({ error: { code: 'STRATA_RATE_LIMITED' } })
  })
})

import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test/support/redis.js'
import { RATE_LIMIT_DEFAULTS } from '../src/plugins/rate-limit.js'
import { ADMIN_TOKEN, ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const fixtures: IngestFixture[] = []
const prefixes: string[] = []
afterAll(async () => {
  await Promise.all(fixtures.map((f) => f.close()))
  await Promise.all(prefixes.map((p) => deletePrefix(p)))
})

async function fixture(...args: Parameters<typeof ingestFixture>): Promise<IngestFixture> {
  const f = await ingestFixture(...args)
  fixtures.push(f)
  return f
}

async function secondProject(f: IngestFixture): Promise<{ adminKey: string; writeKey: string }> {
  const res = await f.app.inject({
    method: 'POST',
    url: '/v1/projects',
    headers: bearer(ADMIN_TOKEN),
    payload: { name: 'other' },
  })
  const keys = (res.json() as { keys: { admin: string; write: string } }).keys
  return { adminKey: keys.admin, writeKey: keys.write }
}

const get = (f: IngestFixture, url: string, key: string) =>
  f.app.inject({ method: 'GET', url, headers: bearer(key) })

function expectLimited(res: { statusCode: number; headers: Record<string, unknown>; json(): any }) {
  expect(res.statusCode).toBe(429)
  expect(res.json()).toMatchObject({
    error: { code: 'STRATA_RATE_LIMITED', message: expect.stringMatching(/Rate limit of/) },
  })
  expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1)
}

describe('per-key rate limits on analytics, imports and performance', () => {
  it('analytics: each key (and the operator token) has its own budget', async () => {
    const nameSpace = uniquePrefix('rl-analytics')
    const f = await fixture('rlanalytics', {
      rateLimit: false,
      routeRateLimits: { analytics: { max: 3, timeWindow: '30s', nameSpace } },
    })
    const other = await secondProject(f)
    for (let i = 0; i < 3; i++)
      expect((await get(f, '/v1/analytics/logins', f.adminKey)).statusCode).toBe(200)
    expectLimited(await get(f, '/v1/analytics/active-users', f.adminKey))
    expect((await get(f, '/v1/analytics/logins', other.adminKey)).statusCode).toBe(200)
    const operator = await get(f, `/v1/analytics/logins?project=${f.projectId}`, ADMIN_TOKEN)
    expect(operator.statusCode).toBe(200)
  })

  it('imports and performance, from the configuration; a refused POST is not read', async () => {
    const f = await fixture('rlops', { rateLimit: false }, undefined, {
      rateLimits: {
        imports: { max: 2, timeWindow: 30_000 },
        performance: { max: 2, timeWindow: 30_000 },
      },
    })
    // (This database has no import tables: the imports answers are 500s, counted all the same.)
    for (const url of ['/v1/imports', '/v1/performance/pool']) {
      for (let i = 0; i < 2; i++) expect((await get(f, url, ADMIN_TOKEN)).statusCode).not.toBe(429)
      expectLimited(await get(f, url, ADMIN_TOKEN))
    }
    const post = await f.app.inject({
      method: 'POST',
      url: '/v1/imports',
      headers: bearer(ADMIN_TOKEN),
      payload: { spec: {} },
    })
    expectLimited(post)
    expect(post.headers.connection).toBe('close')
  })

  it('the defaults apply when nothing is configured', async () => {
    const f = await fixture('rldefaults', { rateLimit: false })
    const res = await get(f, '/v1/analytics/logins', f.adminKey)
    expect(res.statusCode).toBe(200)
    expect(res.headers['x-ratelimit-limit']).toBe(String(RATE_LIMIT_DEFAULTS.analytics.max))
    const perf = await get(f, '/v1/performance/pool', ADMIN_TOKEN)
    expect(perf.headers['x-ratelimit-limit']).toBe(String(RATE_LIMIT_DEFAULTS.performance.max))
    const imports = await get(f, '/v1/imports', ADMIN_TOKEN)
    expect(imports.headers['x-ratelimit-limit']).toBe(String(RATE_LIMIT_DEFAULTS.imports.max))
  })

  it('with Redis the counters are shared by instances', async () => {
    const redis = new Redis(redisUrl())
    const nameSpace = uniquePrefix('rl-shared')
    prefixes.push(nameSpace)
    try {
      const options = {
        rateLimit: false as const,
        redis,
        routeRateLimits: { performance: { max: 3, timeWindow: '30s', nameSpace } },
      }
      const a = await fixture('rlshared', options)
      const b = await fixture('rlshared', options)
      for (const app of [a, b, a])
        expect((await get(app, '/v1/performance/pool', ADMIN_TOKEN)).statusCode).toBe(200)
      expectLimited(await get(b, '/v1/performance/pool', ADMIN_TOKEN))
    } finally {
      redis.disconnect()
    }
  })
})

describe('ingestion, per project', () => {
  it("a Segment body writeKey counts against its project's budget", async () => {
    const nameSpace = uniquePrefix('rl-ingest')
    const f = await fixture('rlingest', { rateLimit: { max: 2, timeWindow: '30s', nameSpace } })
    const batch = { writeKey: f.writeKey, batch: [{ type: 'track', event: 'e', userId: 'u' }] }
    for (let i = 0; i < 2; i++) {
      const res = await f.app.inject({ method: 'POST', url: '/v1/batch', payload: batch })
      expect(res.statusCode).toBe(200)
    }
    expectLimited(await f.app.inject({ method: 'POST', url: '/v1/batch', payload: batch }))
    const keyed = await f.app.inject({
      method: 'POST',
      url: '/v1/track',
      headers: bearer(f.writeKey),
      payload: { event: 'e', userId: 'u' },
    })
    expectLimited(keyed)
  })
})

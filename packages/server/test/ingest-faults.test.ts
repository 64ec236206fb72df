import pg from 'pg'
import type { PoolClient } from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test/support/redis.js'
import { buildTestApp, count, ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

// Faults injected at the real seams: the writer's connection is terminated by Postgres itself
// (pg_terminate_backend) right before COMMIT, as if the server restarted mid-flush.
let f: IngestFixture
let admin: pg.Client
let killMode: 'off' | 'once' | 'always' = 'off'
let kills = 0

beforeAll(async () => {
  f = await ingestFixture('ingfault', {
    writer: {
      retryWindow: '400ms',
      unavailableCooldown: '300ms',
      async beforeCommit(client: PoolClient) {
        if (killMode === 'off') return
        if (killMode === 'once') killMode = 'off'
        kills++
        await admin.query('SELECT pg_terminate_backend($1)', [
          (client as unknown as { processID: number }).processID,
        ])
      },
    },
    rateLimit: { max: 1000, timeWindow: '1s' },
  })
  admin = new pg.Client({ connectionString: f.tdb.url })
  await admin.connect()
})
afterAll(async () => {
  await admin?.end()
  await f?.close()
})

const send = (messageId: string) =>
  f.app.inject({
    method: 'POST',
    url: '/v1/events/batch',
    headers: { authorization: `Bearer ${f.writeKey}` },
    payload: {
      events: [
        { type: 'login', messageId, userId: 'u', method: 'email', success: true },
        { type: 'activity', messageId: `${messageId}-a`, userId: 'u', action: 'view' },
      ],
    },
  })

describe('Postgres connection killed mid-flush', () => {
  it('a flush whose connection dies before COMMIT is retried: 202, every event stored once', async () => {
    killMode = 'once'
    kills = 0
    const res = await send('k1')
    expect(res.statusCode).toBe(202)
    expect(res.json()).toEqual({ accepted: 2, duplicates: 0, rejected: [] })
    expect(kills).toBe(1)
    expect(await count(f.db, `login_events WHERE message_id = 'k1'`)).toBe(1)
    expect(await count(f.db, `activity_logs WHERE message_id = 'k1-a'`)).toBe(1)
  })

  it('concurrent requests during a kill: every acknowledged event is present exactly once', async () => {
    killMode = 'once'
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => send(`c${i}`)))
    for (const r of results) expect(r.statusCode).toBe(202)
    expect(await count(f.db, `login_events WHERE message_id LIKE 'c%'`)).toBe(30)
    expect(await count(f.db, `event_dedup WHERE message_id LIKE 'c%'`)).toBe(60)
  })

  it('database unreachable → 503 + Retry-After (never 2xx); the client retry then stores one row', async () => {
    killMode = 'always'
    const down = await send('d1')
    expect(down.statusCode).toBe(503)
    expect(down.headers['retry-after']).toBeDefined()
    expect(down.json().error.code).toBe('STRATA_DB_UNAVAILABLE')
    // During the cool-down, refused fast without touching the database.
    const fast = await send('d2')
    expect(fast.statusCode).toBe(503)
    expect(await count(f.db, `login_events WHERE message_id IN ('d1','d2')`)).toBe(0)
    killMode = 'off'
    await new Promise((r) => setTimeout(r, 350))
    const retried = await send('d1')
    expect(retried.statusCode).toBe(202)
    const again = await send('d1')
    expect(again.json()).toEqual({ accepted: 0, duplicates: 2, rejected: [] })
    expect(await count(f.db, `login_events WHERE message_id = 'd1'`)).toBe(1)
  })
})

describe('overload and rate limit', () => {
  it('buffer full → 503 STRATA_INGEST_OVERLOADED with Retry-After', async () => {
    const g = await ingestFixture('ingfull', { writer: { maxQueueRows: 1 } })
    try {
      const full = await g.app.inject({
        method: 'POST',
        url: '/v1/events/batch',
        headers: { authorization: `Bearer ${g.writeKey}` },
        payload: {
          events: [
            { type: 'activity', userId: 'u', action: 'a' },
            { type: 'activity', userId: 'u', action: 'b' },
          ],
        },
      })
      expect(full.statusCode).toBe(503)
      expect(full.headers['retry-after']).toBe('1')
      expect(full.json().error.code).toBe('STRATA_INGEST_OVERLOADED')
    } finally {
      await g.close()
    }
  })

  it('per-project rate limit → 429 + Retry-After', async () => {
    const g = await ingestFixture('ingrl', { rateLimit: { max: 2, timeWindow: '10s' } })
    try {
      const hit = () =>
        g.app.inject({
          method: 'POST',
          url: '/v1/activities',
          headers: { authorization: `Bearer ${g.writeKey}` },
          payload: { userId: 'u', action: 'a' },
        })
      expect((await hit()).statusCode).toBe(202)
      expect((await hit()).statusCode).toBe(202)
      const limited = await hit()
      expect(limited.statusCode).toBe(429)
      expect(limited.json().error.code).toBe('STRATA_RATE_LIMITED')
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)
    } finally {
      await g.close()
    }
  })
})

describe('rate limit shared through Redis', () => {
  it('counts one project across two instances', async () => {
    const { Redis } = await import('ioredis')
    const redis = new Redis(redisUrl())
    const nameSpace = uniquePrefix('ingest-rl')
    const options = { rateLimit: { max: 3, timeWindow: '20s', nameSpace }, redis }
    const a = await ingestFixture('ingrl2', options)
    // A second instance: same database, same Redis, its own process state.
    const b = await buildTestApp(a.db, a.app.config, options)
    await b.ready()
    try {
      const hit = (app: typeof b) =>
        app.inject({
          method: 'POST',
          url: '/v1/sessions',
          headers: { authorization: `Bearer ${a.adminKey}` },
          payload: { userId: 'u' },
        })
      expect((await hit(a.app)).statusCode).toBe(201)
      expect((await hit(b)).statusCode).toBe(201)
      expect((await hit(a.app)).statusCode).toBe(201)
      const limited = await hit(b)
      expect(limited.statusCode).toBe(429)
      expect(limited.headers['retry-after']).toBeDefined()
    } finally {
      await b.close()
      await a.close()
      redis.disconnect()
      await deletePrefix(nameSpace)
    }
  })
})

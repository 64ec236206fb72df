import type { AddressInfo } from 'node:net'
import { Analytics as SegmentAnalytics } from '@segment/analytics-node'
import RudderAnalytics from '@rudderstack/rudder-sdk-node'
import pg from 'pg'
import type { PoolClient } from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

// The real SDKs, unchanged, against the service listening on 127.0.0.1:<random port>.
let f: IngestFixture
let admin: pg.Client
let base: string
// Fault switches: kill the writer's connection before COMMIT (a real 503 from a failed flush),
// or lose the answer of a committed request (the SDK resends what was stored).
let killNextFlush = false
let loseNextAnswer = false
const statuses: number[] = []

beforeAll(async () => {
  f = await ingestFixture(
    'ingsdk',
    {
      writer: {
        retryWindow: '0ms',
        unavailableCooldown: '0ms',
        async beforeCommit(client: PoolClient) {
          if (!killNextFlush) return
          killNextFlush = false
          await admin.query('SELECT pg_terminate_backend($1)', [
            (client as unknown as { processID: number }).processID,
          ])
        },
      },
    },
    (app) => {
      app.addHook('onSend', async (request, reply, payload) => {
        if (request.url === '/v1/batch' && loseNextAnswer && reply.statusCode === 200) {
          loseNextAnswer = false
          reply.code(503).header('retry-after', '0')
          return JSON.stringify({
            error: { code: 'TEST_LOST_ANSWER', message: 'answer lost after commit' },
          })
        }
        return payload
      })
      app.addHook('onResponse', async (request, reply) => {
        if (request.url === '/v1/batch') statuses.push(reply.statusCode)
      })
    },
  )
  admin = new pg.Client({ connectionString: f.tdb.url })
  await admin.connect()
  await f.app.listen({ host: '127.0.0.1', port: 0 })
  base = `http://127.0.0.1:${(f.app.server.address() as AddressInfo).port}`
})
afterAll(async () => {
  await admin?.end()
  await f?.close()
})

async function stored(prefix: string): Promise<{ n: number; distinct: number; ids: string[] }> {
  const res = await f.db.query<{ message_id: string }>(
    `SELECT message_id FROM events WHERE project_id = $1 AND user_id LIKE $2 ORDER BY message_id`,
    [f.projectId, `${prefix}%`],
  )
  const ids = res.rows.map((r) => r.message_id)
  return { n: ids.length, distinct: new Set(ids).size, ids }
}

/** Waits until `expected` rows arrived (SDKs flush on timers), then checks nothing more comes. */
async function settled(prefix: string, expected: number): Promise<{ n: number; distinct: number }> {
  const deadline = Date.now() + 15_000
  let s = await stored(prefix)
  while (s.n < expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50))
    s = await stored(prefix)
  }
  await new Promise((r) => setTimeout(r, 300))
  return stored(prefix)
}

describe('@segment/analytics-node', () => {
  const client = () =>
    new SegmentAnalytics({
      writeKey: f.writeKey,
      host: base,
      path: '/v1/batch',
      flushAt: 10,
      flushInterval: 20,
      maxRetries: 5,
    })

  it('every track and identify lands exactly once', async () => {
    const a = client()
    for (let i = 0; i < 20; i++)
      a.track({ userId: `seg-a-${i}`, event: 'Order Completed', properties: { i, total: 9.99 } })
    for (let i = 0; i < 5; i++) a.identify({ userId: `seg-a-id-${i}`, traits: { plan: 'pro' } })
    await a.closeAndFlush({ timeout: 20_000 })
    const s = await stored('seg-a-')
    expect(s.n).toBe(25)
    expect(s.distinct).toBe(25)
    expect(s.ids[0]).toMatch(/^node-next-\d+-/)
  })

  it('a failed flush (503) is retried by the SDK and stored once', async () => {
    statuses.length = 0
    killNextFlush = true
    const a = client()
    for (let i = 0; i < 10; i++) a.track({ userId: `seg-b-${i}`, event: 'Retry Me' })
    await a.closeAndFlush({ timeout: 20_000 })
    expect(statuses).toContain(503)
    expect(statuses.at(-1)).toBe(200)
    const s = await stored('seg-b-')
    expect([s.n, s.distinct]).toEqual([10, 10])
  })

  it('a lost answer after COMMIT: the resent batch is deduplicated', async () => {
    statuses.length = 0
    loseNextAnswer = true
    const a = client()
    for (let i = 0; i < 10; i++) a.track({ userId: `seg-c-${i}`, event: 'Lost Ack' })
    await a.closeAndFlush({ timeout: 20_000 })
    // First answer replaced by a 503 after COMMIT, then the resend was answered 200.
    expect(statuses).toContain(503)
    expect(statuses.at(-1)).toBe(200)
    const s = await stored('seg-c-')
    expect([s.n, s.distinct]).toEqual([10, 10])
  })
})

describe('@rudderstack/rudder-sdk-node (gzip labelled x-www-form-urlencoded)', () => {
  const client = () =>
    new RudderAnalytics(f.writeKey, {
      dataPlaneUrl: base,
      flushAt: 10,
      flushInterval: 20,
      retryCount: 5,
      logLevel: 'error',
    })

  it('every track and identify lands exactly once', async () => {
    const r = client()
    for (let i = 0; i < 20; i++)
      r.track({ userId: `rud-a-${i}`, event: 'Order Completed', properties: { i } })
    for (let i = 0; i < 5; i++) r.identify({ userId: `rud-a-id-${i}`, traits: { plan: 'pro' } })
    await r.flush()
    const s = await settled('rud-a-', 25)
    expect([s.n, s.distinct]).toEqual([25, 25])
  })

  it('a failed flush (503) is retried by the SDK and stored once', async () => {
    statuses.length = 0
    killNextFlush = true
    const r = client()
    for (let i = 0; i < 10; i++) r.track({ userId: `rud-b-${i}`, event: 'Retry Me' })
    await r.flush()
    const s = await settled('rud-b-', 10)
    expect(statuses).toContain(503)
    expect(statuses.at(-1)).toBe(200)
    expect([s.n, s.distinct]).toEqual([10, 10])
  })
})

import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { count, ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

let f: IngestFixture
beforeAll(async () => {
  f = await ingestFixture('amplify', { rateLimit: false })
})
afterAll(async () => {
  await f?.close()
})

const tiny = (i: number) => ({ type: 'track', event: 'e', anonymousId: 'a', messageId: `amp-${i}` })

describe('a small body cannot ask for gigabytes of rows', () => {
  it('a 2 KB gzip whose shared context would be copied into 5,000 messages → 413', async () => {
    const body = gzipSync(
      JSON.stringify({
        context: { pad: 'x'.repeat(250_000) },
        batch: Array.from({ length: 5000 }, () => ({ type: 'track', event: 'e', userId: 'u' })),
      }),
    )
    expect(body.length).toBeLessThan(3000)
    const started = performance.now()
    const res = await f.app.inject({
      method: 'POST',
      url: '/v1/batch',
      headers: {
        authorization: `Bearer ${f.writeKey}`,
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      },
      body,
    })
    expect(res.statusCode).toBe(413)
    expect(res.json()).toMatchObject({
      error: { code: 'STRATA_BATCH_TOO_LARGE', details: { reason: 'expanded-context' } },
    })
    expect(performance.now() - started).toBeLessThan(2000)
    expect(await count(f.db, 'events WHERE project_id = $1', [f.projectId])).toBe(0)
  })

  it('a batch with a modest shared context is stored, the context in each message', async () => {
    const res = await f.app.inject({
      method: 'POST',
      url: '/v1/batch',
      headers: { authorization: `Bearer ${f.writeKey}` },
      payload: {
        context: { library: { name: 'analytics-node' } },
        batch: Array.from({ length: 200 }, (_, i) => tiny(i)),
      },
    })
    expect(res.statusCode).toBe(200)
    const stored = await f.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM events WHERE project_id = $1 AND context->'library'->>'name' = 'analytics-node'`,
      [f.projectId],
    )
    expect(stored.rows[0]!.n).toBe(200)
  })
})

import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { count, ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

// Requests wait for their COMMIT with their events in memory: the bytes they hold are bounded.
let f: IngestFixture
let release: (() => void) | undefined
let held: Promise<void> | undefined

beforeAll(async () => {
  f = await ingestFixture('inflight', {
    ingestBody: { maxInFlightBytes: 3000 },
    writer: {
      maxConcurrentFlushes: 1,
      async beforeCommit() {
        await held
      },
    },
  })
})
afterAll(async () => {
  release?.()
  await f?.close()
})

const batch = (id: string) => ({
  events: [
    {
      type: 'activity',
      messageId: id,
      userId: 'u',
      action: 'view',
      metadata: { pad: 'x'.repeat(1200) },
    },
  ],
})

const send = (id: string) =>
  f.app.inject({
    method: 'POST',
    url: '/v1/events/batch',
    headers: { authorization: `Bearer ${f.writeKey}` },
    payload: batch(id),
  })

describe('ingestion bytes in flight', () => {
  it('past the bound, new bodies get 503 + Retry-After; answered ones free their share', async () => {
    held = new Promise<void>((r) => (release = r))
    let parsed = 0
    const onBody = () => void parsed++
    subscribe('strata.ingest.body', onBody)
    // Two bodies of ~1.3 KB each wait for the held COMMIT: 2.6 KB in flight.
    const waiting = [send('w1'), send('w2')]
    await vi.waitFor(() => expect(parsed).toBe(2), { timeout: 10_000 })
    unsubscribe('strata.ingest.body', onBody)
    // A third would pass 3000 bytes.
    const refused = await send('w3')
    expect(refused.statusCode).toBe(503)
    expect(refused.headers['retry-after']).toBeDefined()
    expect(refused.json().error.code).toBe('STRATA_INGEST_OVERLOADED')
    release!()
    const answers = await Promise.all(waiting)
    expect(answers.map((a) => a.statusCode)).toEqual([202, 202])
    // Their bytes are released: the same body is accepted now.
    const again = await send('w3')
    expect(again.statusCode).toBe(202)
    expect(await count(f.db, `activity_logs WHERE message_id IN ('w1','w2','w3')`)).toBe(3)
  })
})

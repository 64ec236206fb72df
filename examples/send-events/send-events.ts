// Sends events to Strata from a Node backend two ways: with the Segment SDK, pointed at Strata
// by its `host` and `path` options, and with a plain `fetch` to the Segment-compatible /v1/track.
//
//   STRATA_URL=http://localhost:3000 STRATA_WRITE_KEY=sk_... node --import tsx examples/send-events/send-events.ts
import { Analytics } from '@segment/analytics-node'

const baseUrl = process.env.STRATA_URL ?? 'http://localhost:3000'
const writeKey = process.env.STRATA_WRITE_KEY
if (!writeKey) {
  console.error('set STRATA_WRITE_KEY (from `npm run strata -- projects create demo --json`)')
  process.exit(1)
}

// 1. The Segment SDK, unchanged: it batches, retries on 5xx, and sends to `${host}${path}`.
const analytics = new Analytics({ writeKey, host: baseUrl, path: '/v1/batch', flushAt: 20 })
analytics.identify({ userId: 'user-1', traits: { plan: 'pro', email: 'ann@example.com' } })
analytics.track({ userId: 'user-1', event: 'Order Completed', properties: { total: 42.5 } })
analytics.track({ userId: 'user-2', event: 'Signed Up', properties: { source: 'example' } })
// Flush what is queued before the process exits.
await analytics.closeAndFlush({ timeout: 10_000 })
console.log('segment sdk: 3 events sent')

// 2. Plain fetch: one event per request, the write key as a Bearer token.
const res = await fetch(`${baseUrl}/v1/track`, {
  method: 'POST',
  headers: { authorization: `Bearer ${writeKey}`, 'content-type': 'application/json' },
  body: JSON.stringify({
    userId: 'user-3',
    event: 'Page Viewed',
    properties: { path: '/pricing' },
  }),
})
if (!res.ok) {
  console.error(`fetch: ${res.status} ${await res.text()}`)
  process.exit(1)
}
console.log('fetch: 1 event sent')

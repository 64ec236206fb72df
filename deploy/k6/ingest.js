// k6 script: open-loop ingest load against a deployed Strata, the k6 twin of `strata loadtest`.
//   k6 run -e STRATA_URL=https://strata.example.com -e STRATA_WRITE_KEY=sk_w_… \
//     -e RATE=200 -e DURATION=60s -e BATCH=10 deploy/k6/ingest.js
// constant-arrival-rate starts iterations on a timer whether or not earlier ones answered, so
// latency under overload includes queueing, as a real client sees it.
// k6 provides __ENV (the -e variables) as a global.
/* global __ENV */
import http from 'k6/http'
import { check } from 'k6'
import exec from 'k6/execution'

const BASE = (__ENV.STRATA_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '')
const KEY = __ENV.STRATA_WRITE_KEY
const BATCH = Number(__ENV.BATCH || 1)
// Unique per run, so messageIds never collide with an earlier run's (they would count as duplicates).
const RUN = __ENV.RUN_ID || String(Date.now())

export const options = {
  scenarios: {
    ingest: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 100),
      timeUnit: '1s',
      duration: __ENV.DURATION || '30s',
      preAllocatedVUs: Number(__ENV.VUS || 50),
      maxVUs: Number(__ENV.MAX_VUS || 500),
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: ['p(99)<500'],
  },
  summaryTrendStats: ['p(50)', 'p(90)', 'p(99)', 'max', 'avg'],
}

export function setup() {
  if (!KEY) throw new Error('set STRATA_WRITE_KEY to a project write key (sk_w_…)')
}

export default function () {
  const i = exec.scenario.iterationInTest
  const events = []
  for (let j = 0; j < BATCH; j++)
    events.push({
      type: 'login',
      messageId: `k6-${RUN}-${i}-${j}`,
      userId: `k6-user-${(i * BATCH + j) % 1000}`,
      method: 'email',
      success: true,
    })
  const res = http.post(`${BASE}/v1/events/batch`, JSON.stringify({ events }), {
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    tags: { name: 'POST /v1/events/batch' },
  })
  check(res, {
    '202 accepted': (r) => r.status === 202,
    'no rejected items': (r) => r.status !== 202 || r.json('rejected').length === 0,
  })
}

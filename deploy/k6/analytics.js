// k6 script: analytics reads against a deployed Strata (project admin key).
//   k6 run -e STRATA_URL=https://strata.example.com -e STRATA_ADMIN_KEY=sk_a_… \
//     -e RATE=50 -e DURATION=60s deploy/k6/analytics.js
// Answers are cached with an ETag; NO_CACHE=1 varies the range each request to reach PostgreSQL.
// k6 provides __ENV (the -e variables) as a global.
/* global __ENV */
import http from 'k6/http'
import { check } from 'k6'
import exec from 'k6/execution'

const BASE = (__ENV.STRATA_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '')
const KEY = __ENV.STRATA_ADMIN_KEY
const PATHS = [
  '/v1/analytics/logins',
  '/v1/analytics/activity',
  '/v1/analytics/active-users',
  '/v1/analytics/sessions',
  '/v1/analytics/recent-logins',
]

export const options = {
  scenarios: {
    analytics: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 20),
      timeUnit: '1s',
      duration: __ENV.DURATION || '30s',
      preAllocatedVUs: Number(__ENV.VUS || 20),
      maxVUs: Number(__ENV.MAX_VUS || 200),
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: ['p(99)<1000'],
  },
  summaryTrendStats: ['p(50)', 'p(90)', 'p(99)', 'max', 'avg'],
}

export function setup() {
  if (!KEY) throw new Error('set STRATA_ADMIN_KEY to a project admin key (sk_a_…)')
}

export default function () {
  const i = exec.scenario.iterationInTest
  const path = PATHS[i % PATHS.length]
  let query = ''
  if (__ENV.NO_CACHE === '1') {
    // A range ending a different second each time is a different cache key.
    const to = new Date(Date.now() - (i % 3600) * 1000)
    const from = new Date(to.getTime() - 7 * 24 * 3600 * 1000)
    query = `?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`
  }
  const res = http.get(`${BASE}${path}${query}`, {
    headers: { authorization: `Bearer ${KEY}` },
    tags: { name: `GET ${path}` },
  })
  check(res, { 200: (r) => r.status === 200 || r.status === 304 })
}

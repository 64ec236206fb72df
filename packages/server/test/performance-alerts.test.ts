import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AlertManager, type AlertName } from '../src/performance/alerts.js'
import { healthReport } from '../src/performance/health-score.js'
import type { PerformanceSnapshot } from '../src/performance/snapshot.js'

/** A healthy snapshot; tests override one signal at a time. */
function snapshot(patch: (s: PerformanceSnapshot) => void = () => {}): PerformanceSnapshot {
  const s: PerformanceSnapshot = {
    at: new Date().toISOString(),
    database: {
      queries: {
        windowMs: 60_000,
        count: 1000,
        p50: 2,
        p95: 10,
        p99: 20,
        max: 30,
        meanMs: 3,
        slowCount: 0,
        slowShare: 0,
        errors: 0,
      },
      pool: {
        total: 2,
        idle: 2,
        active: 0,
        waiting: 0,
        utilization: 0,
        max: 10,
        acquireWait: { count: 0, p50: 0, p95: 0, p99: 0, max: 0 },
        errors: { acquireFailed: 0, connectionLost: 0, discarded: 0 },
      },
      leaks: 0,
      longRunning: 0,
      idleInTransaction: 0,
      reachable: true,
    },
    cache: {
      l1HitRate: 0.95,
      l1Requests: 1000,
      l2HitRate: 0.9,
      l2Requests: 1000,
      l2Errors: 0,
      breaker: 'closed',
    },
    application: {
      eventLoop: { delayP50Ms: 10, delayP99Ms: 15, delayMaxMs: 20, utilization: 0.2 },
      memory: {
        rssBytes: 1e8,
        heapUsedBytes: 5e7,
        heapTotalBytes: 8e7,
        heapLimitBytes: 2e9,
        heapUsedRatio: 0.025,
        externalBytes: 0,
      },
      uptimeSeconds: 100,
    },
    locks: { blockedSessions: 0, maxWaitMs: 0, deadlocksSinceStart: 0 },
  }
  patch(s)
  return s
}

const BAD: [AlertName, (s: PerformanceSnapshot) => void][] = [
  ['slow_query_share', (s) => void (s.database.queries.slowShare = 0.06)],
  ['query_p95', (s) => void (s.database.queries.p95 = 501)],
  ['pool_utilization', (s) => void (s.database.pool.utilization = 0.85)],
  ['cache_hit_rate', (s) => void (s.cache!.l2HitRate = 0.4)],
  ['eventloop_delay_p99', (s) => void (s.application.eventLoop.delayP99Ms = 150)],
  ['heap_used', (s) => void (s.application.memory.heapUsedRatio = 0.9)],
]

describe('alerts', () => {
  it('each threshold fires above its default and clears below it, with state, since and value', () => {
    for (const [name, bad] of BAD) {
      const m = new AlertManager()
      expect(m.evaluate(snapshot(), 1000)).toEqual([])
      const fired = m.evaluate(snapshot(bad), 2000)
      expect(
        fired.map((t) => [t.alert, t.state]),
        name,
      ).toEqual([[name, 'firing']])
      const st = m.list().find((a) => a.name === name)!
      expect(st).toMatchObject({ state: 'firing', since: new Date(2000).toISOString() })
      expect(st.value).not.toBeNull()
      expect(m.firing().map((a) => a.name)).toEqual([name])
      // Still bad: no new transition.
      expect(m.evaluate(snapshot(bad), 3000)).toEqual([])
      const cleared = m.evaluate(snapshot(), 4000)
      expect(
        cleared.map((t) => [t.alert, t.state]),
        name,
      ).toEqual([[name, 'resolved']])
      expect(m.list().find((a) => a.name === name)).toMatchObject({
        state: 'ok',
        since: new Date(4000).toISOString(),
      })
    }
  })

  it('pool waiting fires only after 30 s of waiting (pending before) and clears', () => {
    const m = new AlertManager()
    const waiting = snapshot((s) => void (s.database.pool.waiting = 2))
    expect(m.evaluate(waiting, 0)).toEqual([])
    expect(m.list().find((a) => a.name === 'pool_waiting')!.state).toBe('pending')
    expect(m.evaluate(waiting, 29_000)).toEqual([])
    expect(m.evaluate(waiting, 30_000).map((t) => t.alert)).toEqual(['pool_waiting'])
    expect(m.evaluate(snapshot(), 31_000).map((t) => t.state)).toEqual(['resolved'])
    // A blip shorter than 30 s never fires.
    m.evaluate(waiting, 40_000)
    expect(m.evaluate(snapshot(), 50_000)).toEqual([])
  })

  it('ignores the slow share and cache hit rate until there is enough data; thresholds are configurable', () => {
    const m = new AlertManager({ thresholds: { queryP95Ms: 50 } })
    const few = snapshot((s) => {
      s.database.queries.count = 5
      s.database.queries.slowShare = 0.8
      s.cache!.l2Requests = 10
      s.cache!.l2HitRate = 0
    })
    expect(m.evaluate(few)).toEqual([])
    expect(
      m.evaluate(snapshot((s) => void (s.database.queries.p95 = 60))).map((t) => t.alert),
    ).toEqual(['query_p95'])
  })
})

describe('alert webhook', () => {
  let server: Server
  let url: string
  const received: unknown[] = []
  let failNext = 1

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        if (failNext > 0) {
          failNext--
          res.statusCode = 500
          return res.end()
        }
        received.push(JSON.parse(body))
        res.end('ok')
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  })
  afterAll(() => new Promise<void>((r) => server.close(() => r())))

  it('POSTs firing and resolved transitions, retrying a failed delivery, without blocking evaluate', async () => {
    const m = new AlertManager({ webhookUrl: url, webhookRetryMs: 10 })
    m.evaluate(snapshot((s) => void (s.application.memory.heapUsedRatio = 0.95)))
    m.evaluate(snapshot())
    // evaluate is synchronous: nothing can have been delivered yet, both are queued/in flight.
    expect(received).toEqual([])
    expect(m.webhook.delivered).toBe(0)
    await m.flush()
    expect(received).toEqual([
      expect.objectContaining({
        source: 'strata',
        alert: 'heap_used',
        state: 'firing',
        value: 0.95,
      }),
      expect.objectContaining({ alert: 'heap_used', state: 'resolved' }),
    ])
    expect(m.webhook).toMatchObject({ delivered: 2, failed: 0, queued: 0 })
  })

  it('gives up after the last attempt and reports the failure', async () => {
    const errors: unknown[] = []
    const m = new AlertManager({
      webhookUrl: 'http://127.0.0.1:9/unreachable',
      webhookAttempts: 2,
      webhookRetryMs: 5,
      onWebhookError: (e) => errors.push(e),
    })
    m.evaluate(snapshot((s) => void (s.application.memory.heapUsedRatio = 0.95)))
    await m.flush()
    expect(m.webhook.failed).toBe(1)
    expect(errors).toHaveLength(1)
  })
})

describe('health score', () => {
  it('is 100 when every signal is good and drops, with issues and recommendations, when not', () => {
    const ok = healthReport(snapshot())
    expect(ok.overall).toEqual({ score: 100, status: 'excellent', healthy: true })
    expect(ok.issues).toEqual([])

    const bad = healthReport(
      snapshot((s) => {
        s.database.queries.slowShare = 0.1 // -30
        s.database.pool.utilization = 1 // -20
        s.locks.blockedSessions = 5 // -40 on locks
      }),
    )
    expect(bad.components.database.score).toBe(50)
    expect(bad.components.locks.score).toBe(60)
    expect(bad.components.cache!.score).toBe(100)
    // weighted: (50·0.4 + 100·0.2 + 100·0.2 + 60·0.2) / 1 = 72; capped at worst + 30 = 80.
    expect(bad.overall.score).toBe(72)
    expect(bad.overall.status).toBe('good')
    expect(bad.issues.join('\n')).toMatch(/10 % of recent queries were slow/)
    expect(bad.recommendations.length).toBe(3)

    const down = healthReport(snapshot((s) => void (s.database.reachable = false)))
    expect(down.components.database.score).toBe(0)
    expect(down.overall.score).toBe(30) // worst (0) + 30
    expect(down.overall.status).toBe('critical')

    const noCache = healthReport(snapshot((s) => void delete s.cache))
    expect(noCache.components.cache).toBeNull()
    expect(noCache.overall.score).toBe(100)
  })
})

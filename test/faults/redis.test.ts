// Redis faults (a private redis-server this file owns): killed, frozen (CLIENT PAUSE and
// SIGSTOP) and full (maxmemory + noeviction). Redis is only cache, rate-limit counters and bus:
// ingestion keeps acknowledging (exactly once), analytics keep answering from PostgreSQL,
// /readyz names Redis as the failing check, and everything recovers without a restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkExactlyOnce, IngestLoad, percentile } from '../support/ingest-load.js'
import { startPrivatePg, type PrivatePg } from '../support/private-pg.js'
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js'
import {
  createProject,
  startStrata,
  type ProjectKeys,
  type StrataProcess,
} from '../support/strata-process.js'
import { probe, report, sampler, sleep, tally, until, type Probe } from './support/fault-kit.js'

let pgs: PrivatePg
let redis: PrivateRedis
let strata: StrataProcess

beforeAll(async () => {
  pgs = await startPrivatePg()
  redis = await startPrivateRedis({ config: { 'maxmemory-policy': 'noeviction' } })
  strata = await startStrata({
    databaseUrl: await pgs.createDatabase('strata'),
    redisUrl: redis.url,
  })
})

afterAll(async () => {
  await strata?.stop()
  await redis?.stop()
  await pgs?.stop()
})

interface Degraded {
  ready: Probe[]
  analytics: Probe[]
  breaker: string[]
}

/** The cache's circuit-breaker gauge lines from /metrics (reported, not asserted on). */
async function breakerState(): Promise<string> {
  const p = await probe(`${strata.url}/metrics`, { timeoutMs: 5000 })
  if (typeof p.body !== 'string') return `metrics ${p.status}`
  return p.body
    .split('\n')
    .filter((l) => l.startsWith('strata_cache_breaker_state'))
    .join('; ')
}

let rangeSeq = 0
/** An analytics read over a range not read before: a cache miss, through the cache to PostgreSQL. */
function analyticsRead(keys: ProjectKeys): Promise<Probe> {
  const to = new Date(Date.now() + 3_600_000 + ++rangeSeq * 1000).toISOString()
  const from = new Date(Date.now() - 86_400_000).toISOString()
  return probe(`${strata.url}/v1/analytics/logins?from=${from}&to=${to}`, {
    headers: { authorization: `Bearer ${keys.adminKey}` },
    timeoutMs: 30_000,
  })
}

/** Samples /readyz and an analytics read while `fault` runs; returns both series. */
async function during(keys: ProjectKeys, fault: () => Promise<void>): Promise<Degraded> {
  const ready = sampler(() => probe(`${strata.url}/readyz`, { timeoutMs: 10_000 }), 250)
  const analytics = sampler(() => analyticsRead(keys), 250)
  const breaker = sampler(breakerState, 1000)
  try {
    await fault()
  } finally {
    await ready.stop()
    await analytics.stop()
    await breaker.stop()
  }
  return {
    ready: ready.results,
    analytics: analytics.results,
    breaker: [...new Set(breaker.results)],
  }
}

function redisCheck(p: Probe): { ok: boolean; error?: string } | undefined {
  const body = p.body as {
    checks?: { name: string; ok: boolean; error?: string }[]
    error?: { details?: { checks?: { name: string; ok: boolean; error?: string }[] } }
  }
  const checks = body?.checks ?? body?.error?.details?.checks
  return checks?.find((c) => c.name === 'redis')
}

async function run(name: string, fault: () => Promise<void>, opts: { expectNotReady: boolean }) {
  const keys = await createProject(strata, name)
  const load = new IngestLoad({ target: () => strata.url, writeKey: keys.writeKey, clients: 4 })
  load.start()
  await load.waitAcked(20)
  let from = 0
  let to = 0
  const seen = await during(keys, async () => {
    from = Date.now()
    await fault()
    to = Date.now()
  })
  // Recovery: /readyz back to 200 with Redis ok, without restarting Strata.
  const readyAgainMs = await until(
    '/readyz 200 after the fault',
    async () => (await probe(`${strata.url}/readyz`, { timeoutMs: 5000 })).status === 200,
    30_000,
    100,
  )
  // The cache uses Redis again: its breaker closes once reads go through it (absent metric: skip).
  const cacheClosedMs = await until(
    'cache breaker closed after the fault',
    async () => {
      await analyticsRead(keys)
      const state = await breakerState()
      return state === '' || / 0$/.test(state)
    },
    30_000,
    250,
  )
  await load.waitAcked(20)
  await load.finish()

  // Samples well inside the window (a pause may end a little before `to`).
  const inFault = (p: Probe) => p.at >= from + 1000 && p.at + p.ms <= to - 500
  const readyDuring = seen.ready.filter(inFault)
  // Reads in flight at some point of the fault (a read slowed by it may outlast the window).
  const analyticsDuring = seen.analytics.filter((p) => p.at < to - 500 && p.at + p.ms > from + 1000)
  const check = await pgs.connect('strata')
  const stored = await checkExactlyOnce(check, keys.projectId, load).finally(() => check.end())
  const figures = {
    faultMs: to - from,
    readyAgainMsAfterFault: readyAgainMs,
    readyzDuring: tally(readyDuring),
    redisCheckDuring: readyDuring.map((p) => redisCheck(p)?.error ?? 'ok').slice(0, 3),
    analyticsDuring: tally(analyticsDuring),
    analyticsP99MsDuring: percentile(
      analyticsDuring.map((p) => p.ms),
      99,
    ),
    cacheBreakerDuring: seen.breaker,
    cacheBreakerClosedMsAfterFault: cacheClosedMs,
    acked: stored.acked,
    stored: stored.stored,
    load: load.summary({ from, to }),
  }
  report(name, figures)

  // Ingestion never depended on Redis: every attempt acknowledged, each event stored once.
  expect(load.attempts.filter((a) => a.status !== 202)).toEqual([])
  expect(stored.missing).toEqual([])
  expect(stored.duplicated).toEqual([])
  expect(stored.unknown).toEqual([])
  expect(stored.stored).toBe(load.sentIds().length)
  // Acknowledgements kept coming during the fault.
  expect(load.attempts.some((a) => a.start >= from + 1000 && a.end <= to)).toBe(true)
  // Analytics answered from PostgreSQL (cache degraded), in bounded time.
  expect(analyticsDuring.length).toBeGreaterThan(0)
  for (const p of analyticsDuring) {
    expect(p.status).toBe(200)
    expect(p.ms).toBeLessThan(10_000)
  }
  // /readyz names Redis as the failing dependency while it does not answer.
  expect(readyDuring.length).toBeGreaterThan(0)
  for (const p of readyDuring) {
    expect(p.ms).toBeLessThan(5000)
    if (opts.expectNotReady) {
      expect(p.status).toBe(503)
      expect(redisCheck(p)?.ok).toBe(false)
    }
  }
}

describe('Redis faults under ingest and analytics load', () => {
  it('5a. Redis killed (SIGKILL) for 6 s, then restarted on the same port', async () => {
    await run(
      'redis-killed',
      async () => {
        await redis.kill()
        await sleep(6000)
        await redis.restart()
      },
      { expectNotReady: true },
    )
  })

  it('5b. Redis paused (CLIENT PAUSE 5000 ALL)', async () => {
    await run(
      'redis-client-pause',
      async () => {
        await redis.command('CLIENT', 'PAUSE', 5000, 'ALL')
        await sleep(5200)
      },
      { expectNotReady: true },
    )
  })

  it('5c. Redis frozen (SIGSTOP) for 6 s', async () => {
    await run(
      'redis-sigstop',
      async () => {
        redis.freeze()
        try {
          await sleep(6000)
        } finally {
          redis.thaw()
        }
      },
      { expectNotReady: true },
    )
  })

  it('5d. Redis full (maxmemory 1mb, noeviction): writes refused with OOM', async () => {
    const filler = redis.client()
    let oom = ''
    try {
      await run(
        'redis-full',
        async () => {
          await filler.config('SET', 'maxmemory', '1mb')
          // Fill what is left, until Redis itself refuses writes.
          const value = 'x'.repeat(16_384)
          for (let i = 0; i < 2000 && !oom; i++) {
            await filler.set(`faults:filler:${i}`, value).catch((err: Error) => {
              oom = err.message
            })
          }
          await sleep(5000)
          // Still full at the end of the window.
          await filler.set('faults:filler:last', value).catch((err: Error) => {
            oom = err.message
          })
          await filler.config('SET', 'maxmemory', '0')
        },
        // A full Redis still answers PING: /readyz may stay 200; what matters is that it answers.
        { expectNotReady: false },
      )
    } finally {
      await filler.config('SET', 'maxmemory', '0').catch(() => {})
      filler.disconnect()
    }
    expect(oom).toMatch(/OOM/)
  })
})

import { eventsMigrations } from '@strata/events'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { HealthReport } from '../src/performance/health-score.js'
import type { ReplicaState } from '../src/replica/replica-monitor.js'
import { ADMIN_TOKEN, buildTestApp } from './support/ingest-fixture.js'
import { startStandby, type Standby } from './support/standby.js'
import { testApp, type TestApp } from './support/test-app.js'

// DATABASE_READ_URL on a real streaming standby of the test PostgreSQL: analytics read it while
// it is up and within STRATA_REPLICA_MAX_LAG (1 s here), the primary otherwise, and say which
// in `x-strata-read-from`.
let standby: Standby
let t: TestApp
let writeKey: string
let adminKey: string
let n = 0

beforeAll(async () => {
  standby = await startStandby()
  t = await testApp('anrep', {
    poolMax: 6,
    migrations: [eventsMigrations],
    config: { adminToken: ADMIN_TOKEN, replicaMaxLagMs: 1000 },
    build: (db, config) =>
      buildTestApp(
        db,
        { ...config, databaseReadUrl: standby.url(new URL(config.databaseUrl!).pathname.slice(1)) },
        { replica: { intervalMs: 200 } },
      ),
  })
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/projects',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    payload: { name: 'anrep' },
  })
  const body = res.json<{ keys: { write: string; admin: string } }>()
  writeKey = body.keys.write
  adminKey = body.keys.admin
}, 60_000)

afterAll(async () => {
  await t?.close()
  await standby?.stop()
})

async function ingest(messageId: string): Promise<void> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/logins',
    headers: { authorization: `Bearer ${writeKey}` },
    payload: { messageId, userId: 'u1', method: 'email', success: true },
  })
  expect(res.statusCode, res.body).toBe(202)
}

/** Recent logins (a new `limit` each call, so no answer comes from the cache). */
async function recent(): Promise<{ ids: string[]; readFrom: string; lag: string | undefined }> {
  const res = await t.app.inject({
    method: 'GET',
    url: `/v1/analytics/recent-logins?limit=${100 - (n++ % 90)}`,
    headers: { authorization: `Bearer ${adminKey}` },
  })
  expect(res.statusCode, res.body).toBe(200)
  return {
    ids: res.json<{ items: { messageId: string }[] }>().items.map((i) => i.messageId),
    readFrom: String(res.headers['x-strata-read-from']),
    lag: res.headers['x-strata-replica-lag'] as string | undefined,
  }
}

async function readyz(): Promise<{ status: number; replica: ReplicaState }> {
  const res = await t.app.inject({ method: 'GET', url: '/readyz' })
  return { status: res.statusCode, replica: res.json<{ replica: ReplicaState }>().replica }
}

/** Polls until `ok` (every 100 ms); returns the ms it took. */
async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 15_000) {
  const started = Date.now()
  while (!(await ok())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return Date.now() - started
}

const monitor = () => t.app.services.replica!

/** GET /v1/performance/health: the service's health report, the replica's state scored in it. */
async function health(): Promise<HealthReport> {
  const res = await t.app.inject({
    method: 'GET',
    url: '/v1/performance/health',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  })
  expect(res.statusCode, res.body).toBe(200)
  return res.json() as HealthReport
}

it('reads what was ingested on the primary from the standby', async () => {
  await ingest('m1')
  await standby.catchUp()
  await until('replica in use', async () => monitor().state.readFrom === 'replica')
  const r = await recent()
  expect(r).toMatchObject({ ids: ['m1'], readFrom: 'replica' })
  const ready = await readyz()
  expect(ready.status).toBe(200)
  expect(ready.replica).toMatchObject({ status: 'up', standby: true, readFrom: 'replica' })
  const metrics = await t.app.inject({ method: 'GET', url: '/metrics' })
  expect(metrics.body).toMatch(/^strata_replica_up 1$/m)
  expect(metrics.body).toMatch(/^strata_replica_reads 1$/m)
  expect(metrics.body).toMatch(/^strata_replica_lag_seconds [\d.e-]+$/m)
  console.log('replica caught up:', ready.replica.lagBytes, 'bytes,', ready.replica.lagSeconds, 's')
})

it('standby down: answers from the primary, /readyz ready with the replica down; back after a start', async () => {
  await standby.stopServer()
  try {
    // The next answer comes from the primary at once (a refused query marks the replica down).
    await ingest('m2')
    const r = await recent()
    expect(r).toMatchObject({ ids: ['m2', 'm1'], readFrom: 'primary' })
    await until('replica seen down', async () => monitor().state.status === 'down')
    const ready = await readyz()
    expect(ready.status).toBe(200)
    expect(ready.replica).toMatchObject({ status: 'down', readFrom: 'primary', reason: 'down' })
    const h = await health()
    expect(h.components.replica!.score).toBe(50)
    expect(h.issues).toContain('the read replica is down: analytics read the primary')
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body
    expect(metrics).toMatch(/^strata_replica_up 0$/m)
    expect(metrics).toMatch(/^strata_replica_lag_seconds nan$/im)
  } finally {
    await standby.startServer()
  }
  const ms = await until('back to the replica', async () => (await recent()).readFrom === 'replica')
  console.log(`standby restarted: analytics back on it after ${ms} ms`)
  expect((await recent()).ids).toEqual(['m2', 'm1'])
})

it('replay paused past STRATA_REPLICA_MAX_LAG: the primary answers with the new data; resumed: the replica', async () => {
  await standby.catchUp()
  await standby.pauseReplay()
  try {
    await ingest('m3')
    const started = Date.now()
    // Within the bound the replica still answers, without m3.
    const early = await recent()
    if (early.readFrom === 'replica') expect(early.ids).not.toContain('m3')
    const ms = await until('fallback', async () => monitor().state.readFrom === 'primary')
    const r = await recent()
    expect(r).toMatchObject({ ids: ['m3', 'm2', 'm1'], readFrom: 'primary' })
    const ready = await readyz()
    expect(ready.status).toBe(200)
    expect(ready.replica).toMatchObject({ status: 'up', replayPaused: true, reason: 'lagging' })
    expect(ready.replica.lagSeconds!).toBeGreaterThan(1)
    expect(ready.replica.lagBytes!).toBeGreaterThan(0)
    // The standby's own view agrees: WAL received but not replayed.
    const own = await standby.lag()
    expect(own.bytes).toBeGreaterThan(0)
    const h = await health()
    // Past the bound (-40) and paused (-10).
    expect(h.components.replica!.score).toBe(50)
    expect(h.issues.join('\n')).toMatch(/read replica is [\d.]+ s behind/)
    console.log(
      `replay paused: primary after ${Date.now() - started} ms (${ms} ms polling);`,
      `lag ${ready.replica.lagSeconds} s, ${ready.replica.lagBytes} bytes`,
      `(standby helper: ${own.seconds} s, ${own.bytes} bytes)`,
    )
  } finally {
    await standby.resumeReplay()
  }
  const back = await until('replica again', async () => monitor().state.readFrom === 'replica')
  const r = await recent()
  expect(r).toMatchObject({ ids: ['m3', 'm2', 'm1'], readFrom: 'replica' })
  console.log(`replay resumed: replica again after ${back} ms, lag header ${r.lag} s`)
})

it('an idle primary is no lag: caught-up LSNs mean 0 s whatever the last replay time', async () => {
  await standby.catchUp()
  const s = await monitor().check()
  // The shared server may be written by other tests: then a few bytes/ms behind, never stale.
  expect(s.lagSeconds!).toBeLessThan(1)
  expect(s.readFrom).toBe('replica')
  expect((await health()).components.replica!.score).toBe(100)
})

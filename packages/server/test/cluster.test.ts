// Several instances on one database and one Redis behave as one cluster: one alert webhook per
// transition (leader election, fenced), and each instance listed with its snapshot.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { eventsMigrations } from '@strata/events'
import { createDatabase, migrate, pgMigrations, type Database } from '@strata/pg'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test/support/redis.js'
import { buildApp } from '../src/app.js'
import { defaultConfig } from '../src/config.js'
import { AlertManager } from '../src/performance/alerts.js'
import type { PerformanceSnapshot } from '../src/performance/snapshot.js'

const TOKEN = 'operator-token-for-cluster-tests'
const auth = { authorization: `Bearer ${TOKEN}` }

interface Instance {
  app: FastifyInstance
  db: Database
  redis: Redis
  closed: boolean
}

let tdb: TestDatabase
let receiver: Server
let webhookUrl: string
const received: Record<string, unknown>[] = []
const instances: Instance[] = []
const prefix = uniquePrefix('cluster')

async function instance(): Promise<Instance> {
  const db = await createDatabase({ url: tdb.url })
  const redis = new Redis(redisUrl())
  const app = await buildApp(
    defaultConfig({
      databaseUrl: tdb.url,
      adminToken: TOKEN,
      alertWebhookUrl: webhookUrl,
      // Fires on every evaluation: the event-loop delay p99 is always above 0 ms.
      alertThresholds: { eventLoopP99Ms: 0 },
    }),
    {
      db,
      redis,
      logger: pino({ level: 'silent' }),
      overrides: {
        rateLimit: false,
        performance: {
          evaluateEveryMs: 0,
          sampleStatements: false,
          cluster: {
            prefix,
            leaderTtlMs: 3000,
            leaderRetryMs: 100,
            publishEveryMs: 300,
            ttlMs: 1500,
          },
        },
      },
    },
  )
  await app.ready()
  const i = { app, db, redis, closed: false }
  instances.push(i)
  return i
}

async function close(i: Instance): Promise<void> {
  if (i.closed) return
  i.closed = true
  await i.app.close()
  await i.db.close()
  i.redis.disconnect()
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 10_000) {
  const t0 = Date.now()
  while (!(await fn())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
  return Date.now() - t0
}

const leaderOf = (is: Instance[]) =>
  is.filter((i) => !i.closed && i.app.services.performance.leader?.isLeader)

beforeAll(async () => {
  tdb = await createTestDatabase('cluster')
  const db = await createDatabase({ url: tdb.url })
  await migrate(db, [pgMigrations, eventsMigrations])
  await db.close()
  receiver = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => (body += d.toString()))
    req.on('end', () => {
      received.push(JSON.parse(body) as Record<string, unknown>)
      res.end('ok')
    })
  })
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
  webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`
})

afterAll(async () => {
  for (const i of instances) await close(i).catch(() => {})
  await new Promise((r) => receiver?.close(r))
  await tdb?.drop()
  await deletePrefix(prefix)
})

describe('several instances on one Redis', () => {
  it('send one webhook per alert transition; the other instance takes over when the leader closes', async () => {
    const a = await instance()
    const b = await instance()
    await until('a leader', () => leaderOf([a, b]).length === 1)
    const [leader] = leaderOf([a, b])
    const follower = leader === a ? b : a
    expect(leaderOf([a, b])).toHaveLength(1)

    // Both instances evaluate (their own /alerts shows the alert firing); one delivers.
    for (const i of [a, b]) {
      const res = await i.app.inject({ url: '/v1/performance/alerts', headers: auth })
      expect(res.statusCode).toBe(200)
      expect(res.json().firing.map((f: { name: string }) => f.name)).toContain(
        'eventloop_delay_p99',
      )
    }
    for (const i of [a, b]) await i.app.services.performance.alerts.flush()
    const firing = received.filter((w) => w.alert === 'eventloop_delay_p99')
    expect(firing).toHaveLength(1)
    const leaderPerf = leader!.app.services.performance
    expect(firing[0]).toMatchObject({
      source: 'strata',
      state: 'firing',
      instance: leaderPerf.instanceId,
      fence: leaderPerf.leader!.fence,
    })
    expect(follower.app.services.performance.alerts.webhook).toMatchObject({
      delivered: 0,
      skipped: 1,
    })

    // The leader goes away (its lock released on close): the other one leads and delivers.
    const fenceBefore = firing[0]!.fence as number
    await close(leader!)
    const takeoverMs = await until('the follower to lead', () => leaderOf([follower]).length === 1)
    console.log(`alerts leader takeover after a clean close: ${takeoverMs} ms`)
    const perf = follower.app.services.performance
    // The next transition of the follower: the event-loop delay back under the threshold.
    const s = await perf.evaluate()
    const calm = structuredClone(s.snapshot)
    calm.application.eventLoop.delayP99Ms = 0
    expect(perf.alerts.evaluate(calm).map((t) => `${t.alert}:${t.state}`)).toContain(
      'eventloop_delay_p99:resolved',
    )
    await perf.alerts.flush()
    const resolved = received.filter((w) => w.state === 'resolved')
    expect(resolved).toHaveLength(1)
    expect(resolved[0]).toMatchObject({
      alert: 'eventloop_delay_p99',
      instance: perf.instanceId,
    })
    expect(resolved[0]!.fence as number).toBeGreaterThan(fenceBefore)
    await close(follower)
  })

  it('a leader whose lock was taken from it (expired while it stalled) stops delivering; the new leader sends with a higher fence', async () => {
    const a = await instance()
    const b = await instance()
    await until('a leader', () => leaderOf([a, b]).length === 1)
    const [old] = leaderOf([a, b])
    const next = old === a ? b : a
    const oldFence = old!.app.services.performance.leader!.fence!
    // What a stall past the TTL looks like from Redis: the key is gone, anyone may take it.
    await old!.redis.del(`${prefix}{alerts-leader}`)
    const takeoverMs = await until('the other instance to lead', () => leaderOf([next]).length > 0)
    // The stalled leader's watchdog finds the lock taken at its next extension (TTL/3).
    const noticedMs = await until(
      'the old leader to step down',
      () => !old!.app.services.performance.leader!.isLeader,
    )
    console.log(
      `lock taken: new leader after ${takeoverMs} ms, old one stepped down after ${noticedMs} ms`,
    )
    const hot = {
      database: { queries: { count: 0 }, pool: { utilization: 0, waiting: 0 } },
      application: { eventLoop: { delayP99Ms: 5 }, memory: { heapUsedRatio: 0 } },
    } as unknown as PerformanceSnapshot
    const before = received.length
    for (const i of [old!, next]) {
      expect(i.app.services.performance.alerts.evaluate(hot)).toHaveLength(1)
      await i.app.services.performance.alerts.flush()
    }
    const sent = received.slice(before)
    expect(sent).toHaveLength(1)
    expect(sent[0]).toMatchObject({
      instance: next.app.services.performance.instanceId,
      state: 'firing',
    })
    expect(sent[0]!.fence as number).toBeGreaterThan(oldFence)
    expect(old!.app.services.performance.alerts.webhook.skipped).toBe(1)
    await close(a)
    await close(b)
  })

  it('lists every live instance with its snapshot and the cluster summed up; a closed one drops out at once, a dead one after its TTL', async () => {
    const a = await instance()
    const b = await instance()
    // A third instance that published once and died (kill -9: nothing deleted): its last
    // entry, written as the registry writes it, with a 1 s TTL.
    const dead = {
      id: 'dead-host:4242:deadbeef',
      hostname: 'dead-host',
      pid: 4242,
      startedAt: new Date().toISOString(),
      publishedAt: new Date().toISOString(),
      snapshot: { pool: { total: 3 }, process: { memory: { rssBytes: 1000 } } },
    }
    await a.redis
      .multi()
      .set(`${prefix}{instances}:${dead.id}`, JSON.stringify(dead), 'PX', 1000)
      .zadd(`${prefix}{instances}`, Date.now() + 1000, dead.id)
      .exec()
    const list = async (i: Instance) => {
      const res = await i.app.inject({ url: '/v1/performance/instances', headers: auth })
      expect(res.statusCode).toBe(200)
      return res.json() as {
        clustered: boolean
        self: string
        instances: { id: string; self: boolean; ageMs: number; snapshot: { pool: unknown } }[]
        cluster: { instances: number; pool: { total: number }; process: { rssBytes: number } }
      }
    }
    const ids = [...[a, b].map((i) => i.app.services.performance.instanceId), dead.id]
    expect(ids[0]).toMatch(/^.+:\d+:[0-9a-f]{8}$/)
    await until('all three listed', async () => (await list(a)).instances.length === 3)
    const all = await list(a)
    expect(all.clustered).toBe(true)
    expect(all.instances.map((i) => i.id).sort()).toEqual([...ids].sort())
    expect(all.instances[0]).toMatchObject({ id: ids[0], self: true })
    for (const i of all.instances.filter((x) => x.id !== dead.id)) {
      expect(i.ageMs).toBeLessThan(1500)
      expect(i.snapshot).toHaveProperty('pool')
      expect(i.snapshot).toHaveProperty('process.eventLoop')
    }
    expect(all.cluster.instances).toBe(3)
    expect(all.cluster.process.rssBytes).toBeGreaterThan(0)
    expect((await list(b)).instances.map((i) => i.id).sort()).toEqual([...ids].sort())

    // A clean close deletes the key: gone from the list at once.
    await close(b)
    expect((await list(a)).instances.map((i) => i.id).sort()).toEqual([ids[0], ids[2]].sort())

    // The dead one drops out once its TTL has passed.
    const goneMs = await until(
      'the dead instance to expire',
      async () => (await list(a)).instances.length === 1,
      5000,
    )
    console.log(`dead instance dropped out after ${goneMs} ms (ttl 1000 ms)`)
    expect((await list(a)).instances.map((i) => i.id)).toEqual([ids[0]])
    await close(a)
  })
})

describe('alert delivery gate', () => {
  it('a deposed leader (fence null at send time) delivers nothing', async () => {
    let fence: number | null = 7
    const m = new AlertManager({
      webhookUrl,
      thresholds: { eventLoopP99Ms: 0 },
      leaderFence: () => fence,
    })
    const before = received.length
    fence = null // lost between evaluation and delivery
    const rules = m.evaluate({
      database: { queries: { count: 0 }, pool: { utilization: 0, waiting: 0 } },
      application: { eventLoop: { delayP99Ms: 5 }, memory: { heapUsedRatio: 0 } },
    } as unknown as PerformanceSnapshot)
    expect(rules.map((t) => t.alert)).toEqual(['eventloop_delay_p99'])
    await m.flush()
    expect(received.length).toBe(before)
    expect(m.webhook).toMatchObject({ delivered: 0, skipped: 1 })
  })
})

describe('without Redis', () => {
  it('lists this instance alone and delivers alerts itself, without a fence', async () => {
    const db = await createDatabase({ url: tdb.url })
    const app = await buildApp(
      defaultConfig({ databaseUrl: tdb.url, adminToken: TOKEN, alertWebhookUrl: webhookUrl }),
      {
        db,
        logger: pino({ level: 'silent' }),
        overrides: {
          rateLimit: false,
          performance: { evaluateEveryMs: 0, sampleStatements: false },
        },
      },
    )
    try {
      await app.ready()
      const perf = app.services.performance
      expect(perf.leader).toBeNull()
      const res = await app.inject({ url: '/v1/performance/instances', headers: auth })
      expect(res.statusCode).toBe(200)
      const body = res.json()
      expect(body).toMatchObject({ clustered: false, self: perf.instanceId, alertsLeader: true })
      expect(body.instances).toHaveLength(1)
      expect(body.instances[0]).toMatchObject({ id: perf.instanceId, self: true, ageMs: 0 })
      expect(body.cluster.instances).toBe(1)
      const before = received.length
      perf.alerts.evaluate({
        database: { queries: { count: 0 }, pool: { utilization: 0.99, waiting: 0 } },
        application: { eventLoop: { delayP99Ms: 0 }, memory: { heapUsedRatio: 0 } },
      } as unknown as PerformanceSnapshot)
      await perf.alerts.flush()
      const sent = received.slice(before)
      expect(sent).toHaveLength(1)
      expect(sent[0]).toMatchObject({ alert: 'pool_utilization', instance: perf.instanceId })
      expect(sent[0]).not.toHaveProperty('fence')
    } finally {
      await app.close()
      await db.close()
    }
  })
})

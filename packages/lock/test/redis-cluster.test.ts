// The lock contract on a real 3-master Redis Cluster started for this file, plus a check that
// the fixture itself gives a working cluster.
import { Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisLock } from '@strata/lock'
import { startRedisCluster } from '../../../test/support/redis-cluster.js'
import type { RedisCluster } from '../../../test/support/redis-cluster.js'
import { registerLockSuite } from './support/lock-suite.js'

let cluster: RedisCluster
const clients: Cluster[] = []
const connect = async () => {
  const c = new Cluster(cluster.nodes, { redisOptions: { commandTimeout: 5000 } })
  clients.push(c)
  await c.ping()
  return c
}

beforeAll(async () => {
  cluster = await startRedisCluster()
}, 60_000)

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.quit()))
  await cluster?.stop()
})

describe('Redis Cluster fixture', () => {
  it('spreads keys over three masters and serves set/get across slots', async () => {
    const c = await connect()
    expect(cluster.nodes).toHaveLength(3)
    const masters = c.nodes('master')
    expect(masters).toHaveLength(3)
    const keys = Array.from({ length: 30 }, (_, i) => `fixture:key:${i}`)
    await Promise.all(keys.map((k, i) => c.set(k, String(i))))
    expect(await Promise.all(keys.map((k) => c.get(k)))).toEqual(keys.map((_, i) => String(i)))
    const slots = new Set(await Promise.all(keys.map((k) => c.cluster('KEYSLOT', k))))
    expect(slots.size).toBeGreaterThan(10)
    // Every master holds some of them: the keyspace really is split.
    const perNode = await Promise.all(masters.map((m) => m.dbsize()))
    expect(perNode.every((n) => n > 0)).toBe(true)
  })
})

registerLockSuite('redis cluster', async () => {
  const a = await connect()
  const b = await connect()
  const prefix = 'strata-test:lock:'
  const provider = createRedisLock({ redis: a, prefix })
  const other = createRedisLock({ redis: b, prefix })
  return {
    provider,
    other,
    breakLock: async (key) => {
      await a.del(`${prefix}{${key}}`)
    },
    // The cluster is private to this file and deleted in afterAll.
    cleanup: async () => {
      await provider.close()
      await other.close()
    },
  }
})

describe('Redis Cluster lock keys', () => {
  it('keeps a lock key and its fence counter in one slot (hash tag)', async () => {
    const c = await connect()
    const prefix = 'slots:'
    const provider = createRedisLock({ redis: c, prefix })
    for (const key of ['a', 'job:42', 'user/7', 'x{y}z']) {
      const l = await provider.acquire(key, '30s')
      // What the provider really wrote, read from the masters while the lock is held.
      const written = (
        await Promise.all(
          c.nodes('master').map(async (node) =>
            Promise.all(
              (await node.keys(`${prefix}*`)).map(async (k) => ({
                key: k,
                node: `${node.options.host}:${node.options.port}`,
                slot: await node.cluster('KEYSLOT', k),
                value: await node.get(k),
              })),
            ),
          ),
        )
      ).flat()
      // Two keys: the owner token and the fence counter (both persist only for this key).
      expect(written.map((w) => w.value).sort()).toEqual([String(l.fence), l.owner].sort())
      expect(new Set(written.map((w) => w.slot)).size, JSON.stringify(written)).toBe(1)
      expect(new Set(written.map((w) => w.node)).size).toBe(1)
      await l.release()
      // Only the fence counter stays; clear it so the next key's pair is read alone.
      await Promise.all(written.map((w) => c.del(w.key)))
    }
    await provider.close()
  })
})

describe('Redis Cluster from a url', () => {
  it('createRedisLock({ url: "redis+cluster://…" }) creates and closes its own Cluster client', async () => {
    const url = `redis+cluster://${cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`
    const provider = createRedisLock({ url, prefix: 'u:' })
    const a = await provider.acquire('via-url', '5s')
    const b = await provider.acquire('via-url-2', '5s')
    expect(a.held && b.held).toBe(true)
    await a.release()
    await b.release()
    const again = await provider.acquire('via-url', '5s', { attempts: 1 })
    expect(again.fence).toBe(a.fence + 1)
    await provider.close()
    expect(again.held).toBe(false)
  })
})

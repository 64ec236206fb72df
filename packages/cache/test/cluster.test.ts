import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCache } from '@strata/cache'
import type { Cache } from '@strata/cache'
import { startRedisCluster } from '../../../test/support/redis-cluster.js'
import type { RedisCluster } from '../../../test/support/redis-cluster.js'
import { sleep, until } from './support/harness.js'

let cluster: RedisCluster
let a: Cache
let b: Cache

beforeAll(async () => {
  cluster = await startRedisCluster()
  const url = `redis+cluster://${cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`
  const make = (): Cache =>
    createCache({
      namespace: 'cluster-test',
      metrics: false,
      l2: { redis: url, commandTimeout: 1000 },
    })
  a = make()
  b = make()
  await Promise.all([a.ready(), b.ready()])
}, 60_000)

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()])
  await cluster?.stop()
})

describe('Redis Cluster (3 masters)', () => {
  it('get/set/has/delete across slots, bus invalidation across instances', async () => {
    expect(a.busConnected).toBe(true)
    for (let i = 0; i < 30; i++) await a.set(`k${i}`, { i })
    for (let i = 0; i < 30; i++) expect(await b.get(`k${i}`)).toEqual({ i })
    expect(await b.has('k3')).toBe(true)
    await a.delete('k3')
    await until(() => b.peek('k3') === undefined)
    expect(await b.get('k3')).toBeUndefined()
  })

  it('getMany / setMany / deleteMany span slots', async () => {
    const items = Array.from({ length: 20 }, (_, i) => ({ key: `m${i}`, value: i }))
    await a.setMany(items)
    expect(await b.getMany(items.map((i) => i.key))).toEqual(items.map((i) => i.value))
    await b.deleteMany(['m1', 'm2'])
    await until(() => a.peek('m1') === undefined && a.peek('m2') === undefined)
    expect(await a.getMany(['m1', 'm2', 'm3'])).toEqual([undefined, undefined, 3])
  })

  it('single-flight across instances: factory once', async () => {
    let calls = 0
    const factory = async (): Promise<string> => {
      calls++
      await sleep(50)
      return 'v'
    }
    const res = await Promise.all(
      Array.from({ length: 400 }, (_, i) => (i % 2 ? a : b).getOrSet('cold', factory)),
    )
    expect(calls).toBe(1)
    expect(new Set(res)).toEqual(new Set(['v']))
  })

  it('tags, deleteByPattern and clear scan every master', async () => {
    const ns = a.namespace('users')
    const nb = b.namespace('users')
    for (let i = 0; i < 30; i++) await ns.set(`u${i}`, i, { tags: ['all-users'] })
    expect(await nb.get('u5')).toBe(5)
    await ns.deleteByTag('all-users')
    await until(() => nb.peek('u5') === undefined)
    expect(await nb.get('u5')).toBeUndefined()
    for (let i = 0; i < 30; i++) await ns.set(`p${i}`, i)
    expect(await ns.deleteByPattern('p*')).toBe(30)
    expect(await nb.get('p7')).toBeUndefined()
    await a.set('root', 1)
    await ns.set('x', 1)
    await ns.clear()
    expect(await nb.get('x')).toBeUndefined()
    expect(await b.get('root')).toBe(1)
  })
})

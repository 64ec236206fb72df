import { afterEach, describe, expect, it } from 'vitest'
import { Registry } from 'prom-client'
import { createCache } from '@strata/cache'
import { harness, sleep, until } from './support/harness.js'
import type { Harness } from './support/harness.js'

let h: Harness
afterEach(async () => h?.cleanup())

describe('namespaces, bulk calls, pattern and clear', () => {
  it('namespace views have their own prefix and defaults', async () => {
    h = harness('ns')
    const a = await h.make()
    const users = a.namespace('users', { ttl: 300 })
    await users.set('1', 'u1')
    await a.set('1', 'root1')
    expect(users.prefix).toBe(`${a.prefix}users:`)
    expect(await users.get('1')).toBe('u1')
    expect(await a.get('1')).toBe('root1')
    await sleep(350)
    expect(await users.get('1')).toBeUndefined() // view default ttl 300 ms
    expect(await a.get('1')).toBe('root1')
  })

  it('clear empties only the namespace (and its sub-namespaces) on every instance', async () => {
    h = harness('clear')
    const a = await h.make()
    const b = await h.make()
    const ua = a.namespace('users')
    const ub = b.namespace('users')
    await ua.set('1', 1)
    await ua.namespace('deep').set('2', 2)
    await a.set('keep', 'k')
    expect(await ub.get('1')).toBe(1)
    await ua.clear()
    await until(() => ub.peek('1') === undefined)
    expect(await ub.get('1')).toBeUndefined()
    expect(await ua.namespace('deep').get('2')).toBeUndefined()
    expect(await b.get('keep')).toBe('k')
  })

  it('deleteByPattern deletes matching keys in L2 and every L1', async () => {
    h = harness('pattern')
    const a = await h.make()
    const b = await h.make()
    for (let i = 0; i < 50; i++) await a.set(`user:${i}`, i)
    await a.set('post:1', 'p')
    expect(await b.get('user:7')).toBe(7)
    const n = await a.deleteByPattern('user:*')
    expect(n).toBe(50)
    await until(() => b.peek('user:7') === undefined)
    expect(await b.get('user:7')).toBeUndefined()
    expect(await b.get('post:1')).toBe('p')
  })

  it('deleteMany, getMany and setMany', async () => {
    h = harness('bulk')
    const a = await h.make()
    const b = await h.make()
    await a.setMany<unknown>([
      { key: 'a', value: 1 },
      { key: 'b', value: { two: 2 }, ttl: '1m' },
      { key: 'c', value: 'three', tags: ['t'] },
    ])
    expect(await b.getMany(['a', 'b', 'c', 'missing'])).toEqual([1, { two: 2 }, 'three', undefined])
    expect(b.peek('a')).toBe(1) // getMany filled L1
    await a.setMany([{ key: 'a', value: 10 }])
    await until(() => b.peek('a') === undefined) // setMany publishes too
    await b.deleteMany(['a', 'b'])
    await until(() => a.peek('a') === undefined && a.peek('b') === undefined)
    expect(await a.getMany(['a', 'b', 'c'])).toEqual([undefined, undefined, 'three'])
    await a.deleteByTag('t')
    await until(() => b.peek('c') === undefined)
    expect(await b.getMany(['c'])).toEqual([undefined])
  })
})

describe('warm-up', () => {
  it('runs by priority with bounded concurrency, retries and progress', async () => {
    h = harness('warm')
    const a = await h.make()
    const order: string[] = []
    let running = 0
    let maxRunning = 0
    let flaky = 0
    const task = (key: string, priority: number) => ({
      key,
      priority,
      factory: async () => {
        order.push(key)
        running++
        maxRunning = Math.max(maxRunning, running)
        await sleep(5)
        running--
        return key.toUpperCase()
      },
    })
    const progress: number[] = []
    const res = await a.warm(
      [
        task('low', 0),
        task('high', 10),
        task('mid', 5),
        {
          key: 'flaky',
          priority: 1,
          factory: () => {
            if (++flaky < 3) throw new Error('transient')
            return 'ok'
          },
        },
        { key: 'broken', factory: () => Promise.reject(new Error('always')) },
      ],
      { concurrency: 1, retries: 2, retryDelay: 1, onProgress: (p) => progress.push(p.done) },
    )
    expect(order).toEqual(['high', 'mid', 'low'])
    expect(maxRunning).toBe(1)
    expect(res.succeeded).toBe(4)
    expect(res.failed.map((f) => f.key)).toEqual(['broken'])
    expect(progress).toEqual([1, 2, 3, 4, 5])
    expect(await a.get('high')).toBe('HIGH')
    expect(await a.get('flaky')).toBe('ok')
  })
})

describe('stats, events, metrics', () => {
  it('counts per tier, factory, latency, hottest keys; emits events', async () => {
    h = harness('stats')
    const a = await h.make()
    const b = await h.make()
    const seen: string[] = []
    a.on('cache:miss', () => seen.push('miss'))
    a.on('cache:set', () => seen.push('set'))
    const onHit = (e: { tier: string }): void => {
      seen.push(`hit:${e.tier}`)
    }
    a.on('cache:hit', onHit)
    a.on('cache:delete', () => seen.push('delete'))
    await a.getOrSet('k', () => 1)
    await a.getOrSet('k', () => 1)
    await a.delete('k')
    a.off('cache:hit', onHit)
    await a.getOrSet('x', () => 1)
    await a.getOrSet('x', () => 1)
    expect(seen).toEqual(['miss', 'set', 'hit:l1', 'delete', 'miss', 'set'])
    await b.set('shared', 's')
    await a.get('shared')
    for (let i = 0; i < 500; i++) await a.getOrSet('x', () => 1)
    const s = a.stats()
    expect(s.l1.hits).toBeGreaterThan(500)
    expect(s.l1.misses).toBe(3)
    expect(s.l2!.hits).toBe(1)
    expect(s.l2!.misses).toBe(2)
    expect(s.factory.calls).toBe(2)
    expect(s.l1.latency.p99).toBeGreaterThan(0)
    expect(s.l2!.latency.p50).toBeGreaterThan(0)
    expect(s.hottestKeys[0]!.key).toBe('x')
    expect(s.bus.connected).toBe(true)
  })

  it('exposes Prometheus metrics on a given registry', async () => {
    h = harness('prom')
    const registry = new Registry()
    const a = await h.make({ metrics: { registry } })
    await a.getOrSet('k', () => 1)
    await a.getOrSet('k', () => 1)
    const text = await registry.metrics()
    expect(text).toContain('strata_cache_requests_total{tier="l1",result="hit"} 1')
    expect(text).toContain('strata_cache_requests_total{tier="l1",result="miss"} 1')
    expect(text).toContain('strata_cache_factory_calls_total{result="ok"} 1')
    expect(text).toContain('strata_cache_entries{tier="l1"} 1')
    expect(text).toContain('strata_cache_breaker_state 0')
    expect(text).toContain('strata_cache_operation_duration_seconds_bucket')
    expect(a.registry).toBe(registry)
  })

  it('emits cache:hit-rate-low when the hit rate falls under the threshold', async () => {
    const c = createCache({
      namespace: 'alert-test',
      metrics: false,
      hitRateAlert: { threshold: 0.5, window: 50, minRequests: 10 },
    })
    const alerts: number[] = []
    c.on('cache:hit-rate-low', (e) => alerts.push(e.hitRate))
    for (let i = 0; i < 20; i++) await c.getOrSet(`k${i}`, () => i) // all misses
    await until(() => alerts.length > 0, 1000)
    expect(alerts[0]).toBe(0)
    await c.close()
  })
})

describe('without Redis', () => {
  it('L1-only caches in one process invalidate each other through the in-process bus', async () => {
    const ns = `local-${Date.now()}`
    const a = createCache({ namespace: ns, metrics: false })
    const b = createCache({ namespace: ns, metrics: false })
    let calls = 0
    await a.set('k', 1, { tags: ['t'] })
    await b.set('k', 1, { tags: ['t'] })
    await a.delete('k')
    expect(b.peek('k')).toBeUndefined()
    await b.set('t1', 'v', { tags: ['t'] })
    await a.deleteByTag('t')
    expect(b.peek('t1')).toBeUndefined()
    const res = await Promise.all(
      Array.from({ length: 100 }, () => a.getOrSet('sf', () => ++calls)),
    )
    expect(new Set(res)).toEqual(new Set([1]))
    await b.set('p:1', 1)
    await a.deleteByPattern('p:*')
    expect(b.peek('p:1')).toBeUndefined()
    await b.set('z', 1)
    await a.clear()
    expect(b.peek('z')).toBeUndefined()
    expect(a.stats().l2).toBeUndefined()
    await Promise.all([a.close(), b.close()])
    await expect(a.get('k')).rejects.toMatchObject({ code: 'STRATA_CACHE_CLOSED' })
  })
})

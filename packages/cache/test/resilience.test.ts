import { afterEach, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { createCache } from '@strata/cache'
import type { Cache, CacheOptions } from '@strata/cache'
import { freePort, startSpareRedis } from './spare-redis.js'
import type { SpareRedis } from './spare-redis.js'
import { sleep, until } from './helpers.js'

const caches: Cache[] = []
let spare: SpareRedis | undefined
afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.close()))
  await spare?.kill()
  spare = undefined
})

function make(url: string, extra: Partial<CacheOptions> = {}): Cache {
  const c = createCache({
    namespace: 'chaos',
    metrics: false,
    l2: { redis: url, commandTimeout: 100, breaker: { threshold: 3, resetAfter: 300 } },
    ...extra,
  })
  caches.push(c)
  return c
}

async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now()
  const value = await p
  return { value, ms: performance.now() - t0 }
}

/** Every API call answers (never throws) while L2 is broken. */
async function exerciseAll(c: Cache): Promise<number> {
  let worst = 0
  const calls: (() => Promise<unknown>)[] = [
    () => c.getOrSet('a', () => 'fa'),
    () => c.get('b'),
    () => c.set('c', 1),
    () => c.has('c'),
    () => c.delete('c'),
    () => c.deleteMany(['a', 'b']),
    () => c.deleteByTag('t'),
    () => c.deleteByPattern('x*'),
    () => c.clear(),
    () => c.getMany(['a', 'b']),
    () => c.setMany([{ key: 'm', value: 1 }]),
  ]
  for (const call of calls) worst = Math.max(worst, (await timed(call())).ms)
  return worst
}

describe('failure behaviour', () => {
  it('Redis unreachable: calls answer from the factory, the breaker opens, nothing throws', async () => {
    const port = await freePort() // nothing listens there
    const c = make(`redis://127.0.0.1:${port}`)
    const states: string[] = []
    c.on('cache:breaker', (e) => states.push(e.state))
    const first = await timed(c.getOrSet('k', () => 'from-factory'))
    expect(first.value).toBe('from-factory')
    expect(first.ms).toBeLessThan(1000) // bounded by commandTimeout, not a 10 s connect
    // L1 still serves what the factory produced.
    expect(c.peek('k')).toBe('from-factory')
    expect(await c.getOrSet('k', () => 'again')).toBe('from-factory')
    expect(await exerciseAll(c)).toBeLessThan(1000)
    expect(states).toContain('open')
    expect(c.stats().l2?.breaker).toBe('open')
  })

  it('Redis hung (SIGSTOP): first call within the command timeout, later ones skip L2', async () => {
    spare = await startSpareRedis()
    const c = make(spare.url)
    await c.ready()
    await c.set('k', 'v')
    spare.stop()
    const res = await timed(c.getOrSet('other', () => 'f'))
    expect(res.value).toBe('f')
    expect(res.ms).toBeLessThan(1000)
    expect(await exerciseAll(c)).toBeLessThan(1000)
    expect(c.stats().l2?.breaker).toBe('open')
    const fast = await timed(c.getOrSet('third', () => 'g'))
    expect(fast.value).toBe('g')
    expect(c.stats().l2?.errors).toBeGreaterThanOrEqual(3)
    // Redis comes back: the breaker half-opens after resetAfter and closes on a good probe.
    spare.cont()
    await sleep(350)
    await until(async () => {
      await c.get('k')
      return c.stats().l2?.breaker === 'closed'
    }, 3000)
    expect(await c.get('k')).toBe('v')
  })

  it('Redis killed and restarted: calls keep answering; breaker closes and the bus re-syncs after', async () => {
    spare = await startSpareRedis()
    const port = spare.port
    const a = make(spare.url)
    const b = make(spare.url)
    await Promise.all([a.ready(), b.ready()])
    const busEvents: boolean[] = []
    b.on('cache:bus', (e) => busEvents.push(e.connected))
    await a.set('k', 'v1', { ttl: '1h' })
    expect(await b.get('k')).toBe('v1')
    await spare.kill()
    spare = undefined
    const res = await timed(a.getOrSet('other', () => 'f'))
    expect(res.value).toBe('f')
    expect(res.ms).toBeLessThan(1000)
    expect(await exerciseAll(a)).toBeLessThan(1000)
    await until(() => busEvents.includes(false))
    spare = await startSpareRedis(port) // an empty Redis comes back on the same port
    await until(() => busEvents.at(-1) === true, 8000)
    expect(b.peek('k')).toBeUndefined() // L1 dropped on re-sync
    await until(async () => {
      await a.get('x')
      return a.stats().l2?.breaker === 'closed'
    }, 5000)
    await a.set('k', 'v2')
    expect(await b.get('k')).toBe('v2')
  })

  it('CLIENT PAUSE: calls answer within the command timeout', async () => {
    spare = await startSpareRedis()
    const c = make(spare.url)
    await c.ready()
    const admin = new Redis(spare.url)
    await admin.call('CLIENT', 'PAUSE', '1500', 'ALL')
    const res = await timed(c.getOrSet('k', () => 'f'))
    expect(res.value).toBe('f')
    expect(res.ms).toBeLessThan(1000)
    expect(await exerciseAll(c)).toBeLessThan(1000)
    await admin.call('CLIENT', 'UNPAUSE')
    admin.disconnect()
  })

  it('without a live bus, L1 entries only live busOutageTtl (bounded stale window)', async () => {
    spare = await startSpareRedis()
    const a = make(spare.url, { bus: false, busOutageTtl: 100 })
    await a.set('k', 'v1', { ttl: '1h' })
    expect(a.peek('k')).toBe('v1')
    expect(a.busConnected).toBe(false)
    await sleep(150)
    expect(a.peek('k')).toBeUndefined() // L1 copy capped
    expect(await a.get('k')).toBe('v1') // L2 keeps the full TTL
  })

  it('bus disconnect is detected and reported', async () => {
    spare = await startSpareRedis()
    const b = make(spare.url)
    await b.ready()
    const events: boolean[] = []
    b.on('cache:bus', (e) => events.push(e.connected))
    const admin = new Redis(spare.url)
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
    await until(() => events.includes(false))
    await until(() => events.at(-1) === true, 5000)
    expect(b.busConnected).toBe(true)
    admin.disconnect()
  })

  it('bus reconnect re-syncs L1: a write missed during the outage is not served afterwards', async () => {
    spare = await startSpareRedis()
    const a = make(spare.url, { busOutageTtl: '1h' }) // outage cap out of the way: test the re-sync
    const b = make(spare.url, { busOutageTtl: '1h' })
    await Promise.all([a.ready(), b.ready()])
    const events: boolean[] = []
    b.on('cache:bus', (e) => events.push(e.connected))
    await a.set('k', 'v1', { ttl: '1h' })
    expect(await b.get('k')).toBe('v1')
    const admin = new Redis(spare.url)
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
    await until(() => events.includes(false))
    await a.set('k', 'v2', { ttl: '1h' }) // b's subscriber is down: it misses this message
    expect(b.peek('k')).toBe('v1')
    await until(() => events.at(-1) === true, 5000)
    expect(b.peek('k')).toBeUndefined()
    expect(await b.get('k')).toBe('v2')
    admin.disconnect()
  })

  it('the offline queue is bounded', async () => {
    const port = await freePort()
    const c = createCache({
      namespace: 'chaos-q',
      metrics: false,
      l2: {
        redis: `redis://127.0.0.1:${port}`,
        commandTimeout: 200,
        maxOfflineQueue: 5,
        breaker: { threshold: 1000 },
      },
    })
    caches.push(c)
    const t0 = performance.now()
    const res = await Promise.all(Array.from({ length: 200 }, (_, i) => c.get(`k${i}`)))
    expect(res.every((r) => r === undefined)).toBe(true)
    expect(performance.now() - t0).toBeLessThan(2000)
    expect(c.stats().l2!.errors).toBe(200)
  })
})

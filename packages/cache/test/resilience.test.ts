import { afterEach, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { createCache } from '@strata/cache'
import type { BreakerState, Cache, CacheOptions } from '@strata/cache'
import { harness, until } from './support/harness.js'
import type { Harness } from './support/harness.js'
import { freePort, startSpareRedis } from './support/spare-redis.js'
import type { SpareRedis } from './support/spare-redis.js'

// A call that waited on a hung Redis would never answer; the bound only has to tell "answered"
// from "hung" (30x the command timeout), so a loaded 2-core box stays well inside it.
const ANSWERS_WITHIN_MS = 3000

const caches: Cache[] = []
let spare: SpareRedis | undefined
let h: Harness | undefined
afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.close()))
  await spare?.kill()
  spare = undefined
  await h?.cleanup()
  h = undefined
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

/** Every API call answers (never throws) while L2 is broken; returns the slowest call's ms. */
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

function breakerStates(c: Cache): BreakerState[] {
  const states: BreakerState[] = []
  c.on('cache:breaker', (e) => states.push(e.state))
  return states
}

describe('L2 faults (chaos driver over the real Redis)', () => {
  it('every L2 call failing: calls answer from L1 and the factory, and the open breaker stops calling L2', async () => {
    h = harness('chaos-open')
    const { cache: c, chaos } = await h.makeChaos({
      l2: { breaker: { threshold: 3, resetAfter: '1h' } },
    })
    const states = breakerStates(c)
    chaos.fail('*')
    expect(await c.getOrSet('k', () => 'from-factory')).toBe('from-factory')
    expect(c.peek('k')).toBe('from-factory')
    expect(await c.getOrSet('k', () => 'again')).toBe('from-factory')
    await exerciseAll(c)
    expect(states).toEqual(['open'])
    expect(c.stats().l2).toMatchObject({ breaker: 'open', errors: 3 })
    // Open: no call reaches the driver any more.
    const reached = chaos.calls()
    await exerciseAll(c)
    expect(await c.getOrSet('k2', () => 'f2')).toBe('f2')
    expect(chaos.calls()).toBe(reached)
  })

  it('half-open: one probe goes out after resetAfter; a failed probe re-opens, a good one closes', async () => {
    h = harness('chaos-probe')
    const { cache: c, chaos } = await h.makeChaos({
      l2: { breaker: { threshold: 2, resetAfter: 50 } },
    })
    const states = breakerStates(c)
    chaos.fail('*')
    await c.get('a')
    await c.get('b')
    expect(states).toEqual(['open'])
    await until(async () => {
      await c.get('c')
      return states.length >= 3
    })
    expect(states.slice(0, 3)).toEqual(['open', 'half-open', 'open'])
    chaos.clear()
    await c.set('k', 'v')
    await until(async () => {
      await c.get('k')
      return c.stats().l2?.breaker === 'closed'
    })
    expect(states.at(-1)).toBe('closed')
    await until(async () => (await c.get('k')) === 'v') // writes reach L2 again
  })

  it('a write L2 never saw, with the breaker still closed, is kept in L1 at most busOutageTtl', async () => {
    h = harness('chaos-lost-write-closed')
    const { cache: a, chaos } = await h.makeChaos({ busOutageTtl: 200 })
    const b = await h.make()
    await a.set('k', 'old', { ttl: '1h' })
    await until(async () => (await b.get('k')) === 'old')
    chaos.fail('setAndPublish', { times: 1 })
    await a.set('k', 'new', { ttl: '1h' })
    expect(a.stats().l2?.breaker).toBe('closed')
    // L2 and the peer still hold 'old': a's 'new' must not stay fresh for the hour.
    await until(() => a.peek('k') === undefined, 5000)
    expect(await b.get('k')).toBe('old')
  })

  it('the L2 write after a factory run does not hold up the caller', async () => {
    h = harness('chaos-write')
    const { cache: a, chaos } = await h.makeChaos()
    const b = await h.make()
    chaos.delay('setAndPublish', 300)
    expect(await a.getOrSet('k', () => 'v')).toBe('v')
    expect(chaos.pending('setAndPublish')).toBe(1) // answered before its L2 write
    await until(() => chaos.pending('setAndPublish') === 0)
    expect(await b.get('k')).toBe('v')
  })

  it('a write L2 never saw, once the breaker is open, is kept in L1 at most busOutageTtl', async () => {
    h = harness('chaos-lost-write')
    const { cache: a, chaos } = await h.makeChaos({
      busOutageTtl: 200,
      l2: { breaker: { threshold: 1, resetAfter: '1h' } },
    })
    chaos.fail('setAndPublish', { times: 1 })
    await a.set('k', 'v', { ttl: '1h' })
    expect(a.stats().l2?.breaker).toBe('open')
    // No peer can be told when it changes: L1 only keeps it briefly.
    await until(() => a.peek('k') === undefined, 5000)
    // Still the best answer while L2 is skipped: get() serves it as a stale value.
    expect(await a.get('k')).toBe('v')
    expect(a.stats().factory.staleServed).toBe(1)
  })

  it('tag versions unreachable: a tagged L2 value is still served (tags trusted briefly), not missed', async () => {
    h = harness('chaos-tags')
    const a = await h.make()
    const { cache: b, chaos } = await h.makeChaos()
    await a.set('k', 'v', { tags: ['t'], ttl: '1h' })
    chaos.fail('getVersions')
    expect(await b.get('k')).toBe('v')
    expect(chaos.calls('getVersions')).toBe(1)
    expect(b.stats().l2?.errors).toBe(1)
  })

  it('a holder whose lock release is lost (as if it crashed): the waiter takes over once the lock expires', async () => {
    h = harness('chaos-lost-release')
    const opts = { l2: { lockTtl: 300 } }
    const [{ cache: a, chaos: chaosA }, { cache: b, chaos: chaosB }] = await Promise.all([
      h.makeChaos(opts),
      h.makeChaos(opts),
    ])
    let started!: () => void
    const holding = new Promise<void>((r) => (started = r))
    let fail!: () => void
    const failing = a.getOrSet('k', async () => {
      started()
      await new Promise<void>((r) => (fail = r))
      throw new Error('source down')
    })
    await holding // a holds the lock
    let bCalls = 0
    const fromB = b.getOrSet('k', () => {
      bCalls++
      return 'from-b'
    })
    await until(() => chaosB.calls('getOrLock') >= 1 && chaosB.pending('getOrLock') === 0) // b: busy
    chaosA.drop(['unlock', 'publish'])
    fail()
    await expect(failing).rejects.toMatchObject({ code: 'STRATA_CACHE_FACTORY_ERROR' })
    expect(await fromB).toBe('from-b')
    expect(bCalls).toBe(1)
    expect(chaosA.calls('unlock')).toBe(1)
    expect(chaosB.calls('getOrLock')).toBeGreaterThanOrEqual(2)
  })
})

describe('real outages (spare redis-server)', () => {
  it('Redis unreachable: calls answer from the factory, the breaker opens, nothing throws', async () => {
    const port = await freePort() // nothing listens there
    const c = make(`redis://127.0.0.1:${port}`)
    const states = breakerStates(c)
    const first = await timed(c.getOrSet('k', () => 'from-factory'))
    expect(first.value).toBe('from-factory')
    // Bounded by the command / connect timeouts, not ioredis' 10 s default connect.
    expect(first.ms).toBeLessThan(ANSWERS_WITHIN_MS)
    // L1 still serves what the factory produced.
    expect(c.peek('k')).toBe('from-factory')
    expect(await c.getOrSet('k', () => 'again')).toBe('from-factory')
    expect(await exerciseAll(c)).toBeLessThan(ANSWERS_WITHIN_MS)
    expect(states).toContain('open')
    expect(c.stats().l2?.breaker).toBe('open')
  })

  it('Redis hung (SIGSTOP): calls answer after the command timeout, then skip L2 until it is back', async () => {
    spare = await startSpareRedis()
    const c = make(spare.url)
    await c.ready()
    await c.set('k', 'v')
    const states = breakerStates(c)
    spare.stop()
    const res = await timed(c.getOrSet('other', () => 'f'))
    expect(res.value).toBe('f')
    expect(res.ms).toBeLessThan(ANSWERS_WITHIN_MS)
    expect(await exerciseAll(c)).toBeLessThan(ANSWERS_WITHIN_MS)
    expect(c.stats().l2?.breaker).toBe('open')
    expect(await c.getOrSet('third', () => 'g')).toBe('g')
    expect(c.stats().l2?.errors).toBeGreaterThanOrEqual(3)
    // Redis comes back: the breaker half-opens after resetAfter and closes on a good probe.
    spare.cont()
    await until(async () => {
      await c.get('k')
      return c.stats().l2?.breaker === 'closed'
    }, 5000)
    expect(states).toContain('half-open')
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
    expect(res.ms).toBeLessThan(ANSWERS_WITHIN_MS)
    expect(await exerciseAll(a)).toBeLessThan(ANSWERS_WITHIN_MS)
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

  it('CLIENT PAUSE: calls answer after the command timeout', async () => {
    spare = await startSpareRedis()
    const c = make(spare.url)
    await c.ready()
    const admin = new Redis(spare.url)
    await admin.call('CLIENT', 'PAUSE', '1500', 'ALL')
    const res = await timed(c.getOrSet('k', () => 'f'))
    expect(res.value).toBe('f')
    expect(res.ms).toBeLessThan(ANSWERS_WITHIN_MS)
    expect(await exerciseAll(c)).toBeLessThan(ANSWERS_WITHIN_MS)
    await admin.call('CLIENT', 'UNPAUSE')
    admin.disconnect()
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

  it('the offline queue is bounded: calls past it fail at once and are counted', async () => {
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
    const res = await timed(Promise.all(Array.from({ length: 200 }, (_, i) => c.get(`k${i}`))))
    expect(res.value.every((r) => r === undefined)).toBe(true)
    expect(res.ms).toBeLessThan(ANSWERS_WITHIN_MS)
    expect(c.stats().l2!.errors).toBe(200)
  })
})

describe('without a live bus', () => {
  it('L1 entries only live busOutageTtl (bounded stale window); L2 keeps the full TTL', async () => {
    h = harness('nobus')
    const a = await h.make({ bus: false, busOutageTtl: 500 })
    expect(a.busConnected).toBe(false)
    await a.set('k', 'v1', { ttl: '1h' })
    await until(() => a.peek('k') === undefined, 5000) // L1 copy capped, not kept for 1h
    expect(await a.get('k')).toBe('v1')
  })
})

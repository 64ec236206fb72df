import { afterEach, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { harness, sleep, until } from './support/harness.js'
import type { Harness } from './support/harness.js'
import { redisUrl } from '../../../test/support/redis.js'

let h: Harness
afterEach(async () => h?.cleanup())

describe('single-flight', () => {
  it('1,000 concurrent getOrSet on a cold key run the factory once in one instance', async () => {
    h = harness('sf1')
    const a = await h.make()
    let calls = 0
    const factory = async (): Promise<string> => {
      calls++
      await sleep(30)
      return 'v'
    }
    const res = await Promise.all(Array.from({ length: 1000 }, () => a.getOrSet('cold', factory)))
    expect(calls).toBe(1)
    expect(res.every((r) => r === 'v')).toBe(true)
  })

  it('1,000 concurrent getOrSet across 4 instances run the factory once (Redis lock + pub/sub wake)', async () => {
    h = harness('sf4')
    const caches = await Promise.all([h.make(), h.make(), h.make(), h.make()])
    let calls = 0
    const factory = async (): Promise<{ big: string }> => {
      calls++
      await sleep(50)
      return { big: 'x'.repeat(100_000) }
    }
    const t0 = Date.now()
    const res = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => caches[i % 4]!.getOrSet('cold', factory)),
    )
    const wall = Date.now() - t0
    expect(calls).toBe(1)
    expect(res.every((r) => r.big.length === 100_000)).toBe(true)
    // Waiters are woken by the PUBLISH, not a poll loop: nowhere near the 10 s lock TTL.
    expect(wall).toBeLessThan(5000)
    expect(caches.reduce((n, c) => n + c.stats().factory.calls, 0)).toBe(1)
  })

  it('a fast factory is still run once across instances (lock and read are one script)', async () => {
    h = harness('sffast')
    const caches = await Promise.all([h.make(), h.make(), h.make(), h.make()])
    let calls = 0
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => caches[i % 4]!.getOrSet(`k${round}`, () => ++calls)),
      )
    }
    expect(calls).toBe(20)
  })

  it('when the holder’s factory fails, a waiting instance takes over at once, not after the lock TTL', async () => {
    h = harness('failover')
    const lockTtl = 10_000
    const a = await h.make({ l2: { redis: redisUrl(), lockTtl } })
    const { cache: b, chaos: chaosB } = await h.makeChaos({ l2: { lockTtl } })
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
    const fromB = b.getOrSet('k', async () => {
      bCalls++
      return 'from-b'
    })
    // b's lock attempt was answered (busy: a holds it), so b now waits for a's message.
    await until(() => chaosB.calls('getOrLock') >= 1 && chaosB.pending('getOrLock') === 0)
    const t0 = Date.now()
    fail()
    await expect(failing).rejects.toMatchObject({ code: 'STRATA_CACHE_FACTORY_ERROR' })
    expect(await fromB).toBe('from-b')
    expect(bCalls).toBe(1)
    // Woken by a's release message; without it b would sleep for the whole lock TTL.
    expect(Date.now() - t0).toBeLessThan(lockTtl / 2)
  })

  it('waiters take over after the lock TTL when the holder crashed', async () => {
    h = harness('crash')
    const { cache: a, chaos } = await h.makeChaos({ l2: { lockTtl: 200 } })
    // Simulate a crashed holder: a lock taken by nobody alive, outliving a few of a's waits.
    const raw = new Redis(redisUrl())
    await raw.set(`{${a.prefix}k}:lock`, 'dead-holder', 'PX', 1000)
    raw.disconnect()
    let calls = 0
    const v = await a.getOrSet('k', () => ++calls)
    expect(v).toBe(1)
    expect(calls).toBe(1)
    expect(chaos.calls('getOrLock')).toBeGreaterThanOrEqual(2) // found it busy, took over later
  })
})

describe('lock keep-alive', () => {
  it('a factory slower than the lock TTL still runs once across instances', async () => {
    h = harness('keepalive')
    // lockTtl 250 ms (keep-alive every 125 ms): at 100 ms a loaded 2-core box stalled the
    // keep-alive past the TTL now and then, and the test flaked.
    const opts = { l2: { redis: redisUrl(), lockTtl: 250 } }
    const [a, b] = await Promise.all([h.make(opts), h.make(opts)])
    let calls = 0
    const factory = async (): Promise<string> => {
      calls++
      await sleep(900)
      return 'slow'
    }
    const res = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).getOrSet('slow', factory)),
    )
    expect(calls).toBe(1)
    expect(new Set(res)).toEqual(new Set(['slow']))
  })
})

import { afterEach, describe, expect, it } from 'vitest'
import { cacheErrors } from '@strata/cache'
import { harness, sleep, until } from './support/harness.js'
import type { Harness } from './support/harness.js'

let h: Harness
afterEach(async () => h?.cleanup())

describe('grace, stale-while-revalidate and timeouts', () => {
  it('serves the last good value when the factory fails within grace', async () => {
    h = harness('grace')
    const a = await h.make()
    await a.getOrSet('k', () => 'good', { ttl: 20, grace: '1m' })
    await sleep(30)
    const errors: unknown[] = []
    const reasons: string[] = []
    a.on('cache:factory-error', (e) => errors.push(e.error))
    a.on('cache:stale-served', (e) => reasons.push(e.reason))
    // A soft timeout far beyond the refresh: the stale value is served because the factory
    // failed, never because a loaded box let the timer win.
    const v = await a.getOrSet(
      'k',
      () => {
        throw new Error('db down')
      },
      { ttl: 20, grace: '1m', timeouts: { soft: '10s' } },
    )
    expect(v).toBe('good')
    expect(reasons).toEqual(['factory-error'])
    expect(errors).toHaveLength(1)
    expect(a.stats().factory.errors).toBe(1)
  })

  it('without a stale value, a factory error is wrapped with its cause', async () => {
    h = harness('ferr')
    const a = await h.make()
    const cause = new Error('boom')
    const err = await a
      .getOrSet('k', () => {
        throw cause
      })
      .catch((e: unknown) => e)
    expect(cacheErrors.is(err, 'STRATA_CACHE_FACTORY_ERROR')).toBe(true)
    expect((err as Error).cause).toBe(cause)
  })

  it('stale-while-revalidate: 1,000 callers get the stale value at once, exactly one refresh runs', async () => {
    h = harness('swr')
    const a = await h.make()
    const b = await h.make()
    await a.getOrSet('k', () => 'v1', { ttl: 20, grace: '1m' })
    await b.get('k')
    await sleep(30)
    let refreshes = 0
    let refreshed = false
    // The refresh is held until every caller has answered (or 5 s pass, so a cache that made
    // callers wait for the refresh fails the assertion below instead of hanging): no timing race.
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const safety = setTimeout(() => release(), 5000)
    const factory = async (): Promise<string> => {
      refreshes++
      await gate
      refreshed = true
      return 'v2'
    }
    const res = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        (i % 2 ? a : b).getOrSet('k', factory, { ttl: '1m', grace: '1m' }),
      ),
    )
    expect(refreshed).toBe(false) // every caller answered before the refresh finished
    release()
    clearTimeout(safety)
    expect(res.every((r) => r === 'v1')).toBe(true)
    await until(() => a.peek('k') === 'v2' || b.peek('k') === 'v2')
    await until(async () => (await a.get('k')) === 'v2' && (await b.get('k')) === 'v2')
    expect(await a.getOrSet('k', factory)).toBe('v2')
    expect(await b.getOrSet('k', factory)).toBe('v2')
    expect(refreshes).toBe(1) // one across both instances (lock)
  })

  it('soft timeout returns stale and lets the factory finish in background', async () => {
    h = harness('soft')
    const a = await h.make()
    await a.set('k', 'old', { ttl: 10, grace: '1m' })
    await sleep(20)
    const v = await a.getOrSet(
      'k',
      async () => {
        await sleep(150)
        return 'new'
      },
      { timeouts: { soft: 30 }, grace: '1m' },
    )
    expect(v).toBe('old')
    await until(() => a.peek('k') === 'new')
  })

  it('soft timeout: a factory faster than soft returns the fresh value', async () => {
    h = harness('softfast')
    const a = await h.make()
    await a.set('k', 'old', { ttl: 10, grace: '1m' })
    await sleep(20)
    // Soft far above the refresh's two round trips, so a loaded box can't let the timer win.
    const v = await a.getOrSet('k', async () => 'new', { timeouts: { soft: '10s' }, grace: '1m' })
    expect(v).toBe('new')
  })

  it('hard timeout rejects with STRATA_CACHE_FACTORY_TIMEOUT, or serves stale', async () => {
    h = harness('hard')
    const a = await h.make()
    const slow = async (): Promise<string> => {
      await sleep(300)
      return 'late'
    }
    const err = await a.getOrSet('k', slow, { timeouts: { hard: 50 } }).catch((e: unknown) => e)
    expect(cacheErrors.is(err, 'STRATA_CACHE_FACTORY_TIMEOUT')).toBe(true)
    expect(a.stats().factory.timeouts).toBe(1)
    await a.set('s', 'stale', { ttl: 10, grace: '1m' })
    await sleep(20)
    expect(await a.getOrSet('s', slow, { timeouts: { soft: 200, hard: 50 }, grace: '1m' })).toBe(
      'stale',
    )
  })

  it('TTL jitter spreads expiries', async () => {
    h = harness('jitter')
    const a = await h.make({ jitter: 0.5 })
    for (let i = 0; i < 20; i++) await a.set(`k${i}`, i, { ttl: 10_000 })
    const { Redis } = await import('ioredis')
    const { redisUrl } = await import('../../../test/support/redis.js')
    const raw = new Redis(redisUrl())
    const ttls = await Promise.all(
      Array.from({ length: 20 }, (_, i) => raw.pttl(`${a.prefix}k${i}`)),
    )
    raw.disconnect()
    // ±50 % of 10 s: all within [5 s, 15 s], and spread out (20 uniform draws).
    expect(Math.min(...ttls)).toBeGreaterThanOrEqual(4_000)
    expect(Math.max(...ttls)).toBeLessThanOrEqual(15_000)
    expect(Math.max(...ttls) - Math.min(...ttls)).toBeGreaterThan(2_000)
  })
})

import { afterEach, describe, expect, it } from 'vitest'
import { cacheErrors, createCache } from '@strata/cache'
import { harness, sleep, until } from './support/harness.js'
import type { Harness } from './support/harness.js'

let h: Harness
afterEach(async () => h?.cleanup())

describe('cache API on real Redis', () => {
  it('getOrSet caches in L1 and L2; get/set/has/delete/peek', async () => {
    h = harness('api')
    const a = await h.make()
    let calls = 0
    const v1 = await a.getOrSet('k', () => ({ n: ++calls }))
    const v2 = await a.getOrSet('k', () => ({ n: ++calls }))
    expect(v1).toEqual({ n: 1 })
    expect(v2).toBe(v1) // live object from L1
    expect(a.peek('k')).toBe(v1)
    expect(await a.has('k')).toBe(true)
    const b = await h.make()
    // getOrSet answers once L1 is filled; its L2 write lands a round trip later.
    await until(async () => (await b.get('k')) !== undefined)
    expect(await b.get('k')).toEqual({ n: 1 }) // from L2
    await a.set('x', 'hello', { ttl: '1m' })
    expect(await b.get('x')).toBe('hello')
    await a.delete('x')
    expect(await a.get('x')).toBeUndefined()
    expect(await b.has('x')).toBe(false)
    expect(a.peek('missing')).toBeUndefined()
    expect(a.stats().factory.calls).toBe(1)
    expect(a.stats().l1.hits).toBeGreaterThanOrEqual(2)
  })

  it('invalid keys and options raise coded errors', async () => {
    h = harness('invalid')
    const a = await h.make()
    await expect(a.getOrSet('', () => 1)).rejects.toMatchObject({
      code: 'STRATA_CACHE_INVALID_KEY',
    })
    await expect(a.set('__strata:x', 1)).rejects.toMatchObject({ code: 'STRATA_CACHE_INVALID_KEY' })
    await expect(a.set('k', 1, { ttl: 'soon' })).rejects.toMatchObject({
      code: 'STRATA_CACHE_INVALID_OPTIONS',
    })
    expect(() => createCache({ l1: { maxEntries: -1 } })).toThrow(
      expect.objectContaining({ code: 'STRATA_CACHE_INVALID_OPTIONS' }),
    )
    const j = await h.make({ serializer: 'json' })
    await expect(j.getOrSet('big', () => 1n)).rejects.toMatchObject({
      code: 'STRATA_CACHE_SERIALIZATION_FAILED',
    })
    await expect(j.set('big', 1n)).rejects.toSatisfy((e) =>
      cacheErrors.is(e, 'STRATA_CACHE_SERIALIZATION_FAILED'),
    )
  })

  it('delete on one instance evicts the other instance L1 through the bus', async () => {
    h = harness('bus')
    const a = await h.make()
    const b = await h.make()
    await a.set('k', 1)
    expect(await b.get('k')).toBe(1)
    expect(b.peek('k')).toBe(1)
    const seen = new Promise<{ kind: string; keys?: string[] }>((resolve) => {
      const fn = (e: { kind: string; keys?: string[] }): void => {
        if (e.kind !== 'delete') return
        b.off('cache:invalidated', fn)
        resolve(e)
      }
      b.on('cache:invalidated', fn)
    })
    await a.delete('k')
    expect(await seen).toMatchObject({ kind: 'delete', keys: ['k'] })
    expect(b.peek('k')).toBeUndefined() // the event fires after the eviction
    await a.set('k', 2)
    await until(() => b.peek('k') === undefined) // a newer set evicts the old L1 copy
    expect(await b.get('k')).toBe(2)
  })

  it('ttl expiry', async () => {
    h = harness('ttl')
    const a = await h.make()
    await a.set('k', 1, { ttl: 200 })
    expect(a.peek('k')).toBe(1)
    await sleep(250)
    expect(a.peek('k')).toBeUndefined()
    expect(await a.get('k')).toBeUndefined()
  })
})

describe('coherence', () => {
  it('a late invalidation (older version) never evicts a newer value', async () => {
    h = harness('coherence')
    const a = await h.make()
    const { Redis } = await import('ioredis')
    const { redisUrl } = await import('../../../test/support/redis.js')
    const raw = new Redis(redisUrl())
    await a.set('k', 'new')
    const buf = await raw.getBuffer(`${a.prefix}k`)
    const version = buf!.readDoubleLE(2)
    const channel = `${h.namespace}:__strata:bus`
    const full = 'k' // bus messages carry keys relative to the namespace
    await raw.publish(channel, JSON.stringify({ o: 'peer', t: 'del', v: version - 1, k: [full] }))
    await raw.publish(channel, JSON.stringify({ o: 'peer', t: 'clear', v: version - 1, p: '' }))
    await sleep(30)
    expect(a.peek('k')).toBe('new')
    await raw.publish(channel, JSON.stringify({ o: 'peer', t: 'del', v: version + 1, k: [full] }))
    await until(() => a.peek('k') === undefined)
    raw.disconnect()
  })
})

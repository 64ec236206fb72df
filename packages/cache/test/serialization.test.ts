import { afterEach, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { harness } from './support/harness.js'
import type { Harness } from './support/harness.js'
import { redisUrl } from '../../../test/support/redis.js'

let h: Harness
afterEach(async () => h?.cleanup())

const big = {
  rows: Array.from({ length: 500 }, (_, i) => ({ id: i, name: `user ${i}`, ok: true })),
}

async function rawLength(key: string): Promise<number> {
  const r = new Redis(redisUrl())
  try {
    return (await r.getBuffer(key))?.length ?? -1
  } finally {
    r.disconnect()
  }
}

describe('serialization and compression', () => {
  for (const serializer of ['msgpack', 'json'] as const) {
    for (const algorithm of ['deflate', 'gzip', 'brotli'] as const) {
      it(`${serializer} + ${algorithm}: round trip through L2, compressed above the threshold`, async () => {
        h = harness(`ser-${serializer}-${algorithm}`)
        const a = await h.make({ serializer, compress: { thresholdBytes: 1024, algorithm } })
        const b = await h.make({ serializer, compress: { thresholdBytes: 1024, algorithm } })
        await a.set('big', big)
        await a.set('small', { a: 1, s: 'x', n: null, arr: [1, 2] })
        expect(await b.get('big')).toEqual(big)
        expect(await b.get('small')).toEqual({ a: 1, s: 'x', n: null, arr: [1, 2] })
        expect(await rawLength(`${a.prefix}big`)).toBeLessThan(JSON.stringify(big).length / 3)
      })
    }
  }

  it('by default only values of 64 KiB and more are compressed', async () => {
    h = harness('defcomp')
    const a = await h.make()
    const small = { rows: big.rows.slice(0, 100) } // ~4 KB
    const large = { rows: Array.from({ length: 4000 }, (_, i) => ({ id: i, name: `user ${i}` })) }
    await a.set('small', small)
    await a.set('large', large)
    expect(await rawLength(`${a.prefix}small`)).toBeGreaterThan(JSON.stringify(small).length)
    expect(await rawLength(`${a.prefix}large`)).toBeLessThan(JSON.stringify(large).length / 3)
    const b = await h.make()
    expect(await b.get('large')).toEqual(large)
  })

  it('compression can be disabled', async () => {
    h = harness('nocomp')
    const a = await h.make({ serializer: 'json', compress: false })
    await a.set('big', big)
    expect(await rawLength(`${a.prefix}big`)).toBeGreaterThan(JSON.stringify(big).length)
  })

  it('msgpack keeps Dates; L1 returns live objects; clone:true returns copies', async () => {
    h = harness('clone')
    const live = await h.make({ serializer: 'msgpack' })
    const obj = { at: new Date(0), list: [1] }
    await live.set('o', obj)
    const got = await live.get<typeof obj>('o')
    expect(got).toBe(obj)
    const other = await h.make({ serializer: 'msgpack' })
    const viaL2 = await other.get<typeof obj>('o')
    expect(viaL2?.at).toBeInstanceOf(Date)
    const cloning = await h.make({ clone: true })
    await cloning.set('c', obj)
    const c1 = await cloning.get<typeof obj>('c')
    expect(c1).toEqual(obj)
    expect(c1).not.toBe(obj)
    c1!.list.push(2)
    expect((await cloning.get<typeof obj>('c'))!.list).toEqual([1])
  })

  it('L1 is bounded by entry count and by bytes', async () => {
    h = harness('bounds')
    const byCount = await h.make({ l1: { maxEntries: 10 } })
    for (let i = 0; i < 30; i++) await byCount.set(`k${i}`, i)
    expect(byCount.stats().l1.size).toBe(10)
    expect(byCount.stats().l1.evictions).toBe(20)
    const byBytes = await h.make({ l1: { maxBytes: 20_000 }, compress: false })
    for (let i = 0; i < 10; i++) await byBytes.set(`b${i}`, 'x'.repeat(5000))
    expect(byBytes.stats().l1.bytes).toBeLessThanOrEqual(20_000)
    expect(byBytes.stats().l1.size).toBeLessThan(10)
    expect(await byBytes.get('b0')).toBe('x'.repeat(5000)) // still in L2
  })
})

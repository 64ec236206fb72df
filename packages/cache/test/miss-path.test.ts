import { afterEach, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { harness, until } from './support/harness.js'
import type { Harness } from './support/harness.js'
import { redisUrl } from '../../../test/support/redis.js'

let h: Harness
let admin: Redis | undefined
afterEach(async () => {
  admin?.disconnect()
  admin = undefined
  await h?.cleanup()
})

/** Misses on unique keys: afterwards refreshes start with getOrLock instead of a plain GET. */
async function missMany(c: { getOrSet<T>(k: string, f: () => T): Promise<T> }, n: number) {
  for (let i = 0; i < n; i++) await c.getOrSet(`miss${i}`, () => i)
}

describe('miss path', () => {
  it('after a run of misses, an L2 hit is still a hit and leaves no lock behind', async () => {
    h = harness('mp-hit')
    const writer = await h.make()
    const reader = await h.make()
    await missMany(reader, 40)
    await writer.set('x', { v: 1 })
    const hitsBefore = reader.stats().l2!.hits
    let calls = 0
    expect(await reader.getOrSet('x', () => ++calls)).toEqual({ v: 1 })
    expect(calls).toBe(0)
    expect(reader.stats().l2!.hits).toBe(hitsBefore + 1)
    // A lock taken while reading the value is given back at once (not left for lockTtl).
    admin = new Redis(redisUrl())
    await until(async () => (await admin!.exists(`{${h.namespace}:x}:lock`)) === 0, 1000)
    // ... so a later refresh elsewhere is not blocked by it.
    await writer.delete('x')
    expect(await writer.getOrSet('x', () => 'new', { timeouts: { hard: 2000 } })).toBe('new')
  })

  it('cross-instance single-flight still holds once refreshes start with getOrLock', async () => {
    h = harness('mp-sf')
    const caches = await Promise.all([h.make(), h.make(), h.make(), h.make()])
    for (const c of caches) await missMany(c, 40)
    for (let round = 0; round < 10; round++) {
      let calls = 0
      const res = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          caches[i % 4]!.getOrSet(`cold${round}`, async () => {
            calls++
            await new Promise((r) => setTimeout(r, 20))
            return round
          }),
        ),
      )
      expect(calls).toBe(1)
      expect(res.every((r) => r === round)).toBe(true)
    }
  })

  it('wraps a rejecting thenable returned by a factory like any factory error', async () => {
    h = harness('mp-then')
    const c = await h.make()
    const thenable = {
      then(_ok: (v: number) => void, fail: (e: Error) => void) {
        fail(new Error('boom'))
      },
    }
    await expect(c.getOrSet('t', () => thenable as unknown as number)).rejects.toMatchObject({
      code: 'STRATA_CACHE_FACTORY_ERROR',
    })
    expect(c.stats().factory.errors).toBe(1)
  })
})

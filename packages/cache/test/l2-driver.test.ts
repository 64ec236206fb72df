import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { IoRedisDriver, createCache } from '@strata/cache'
import { redisUrl } from '../../../test/support/redis.js'
import { repoRoot, tsNodeArgs } from '../../../test/support/spawn.js'
import { ChaosDriver } from './support/chaos-driver.js'
import { harness, until } from './support/harness.js'
import type { Harness } from './support/harness.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.cleanup()
  h = undefined
})

describe('l2 option', () => {
  it('takes a ready-made driver, and close() closes it', async () => {
    h = harness('driver')
    const { cache: a, chaos } = await h.makeChaos()
    const b = await h.make()
    await a.set('k', 'v')
    expect(chaos.calls('setAndPublish')).toBe(1)
    expect(await b.get('k')).toBe('v')
    await a.close()
    await until(() => !chaos.inner.ready())
  })

  it('rejects a driver whose keyPrefix is not the namespace', () => {
    const driver = new ChaosDriver(new IoRedisDriver(redisUrl(), { keyPrefix: 'other:' }))
    try {
      expect(() => createCache({ namespace: 'app', metrics: false, l2: { driver } })).toThrow(
        expect.objectContaining({ code: 'STRATA_CACHE_INVALID_OPTIONS' }),
      )
    } finally {
      void driver.close()
    }
  })

  it('needs exactly one of redis and driver', () => {
    const driver = new ChaosDriver(new IoRedisDriver(redisUrl(), { keyPrefix: 'app:' }))
    try {
      for (const l2 of [{}, { redis: redisUrl(), driver }])
        expect(() =>
          createCache({ namespace: 'app', metrics: false, l2: l2 as { driver: ChaosDriver } }),
        ).toThrow(expect.objectContaining({ code: 'STRATA_CACHE_INVALID_OPTIONS' }))
    } finally {
      void driver.close()
    }
  })

  it('an L1-only cache never loads ioredis', async () => {
    const script = `
      import { createRequire } from 'node:module'
      const { createCache } = await import('@strata/cache')
      const c = createCache({ metrics: false })
      await c.set('k', 1)
      const loaded = Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('/ioredis/'))
      await c.close()
      console.log(JSON.stringify({ loaded }))
    `
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [...tsNodeArgs, '--input-type=module', '-e', script],
      { cwd: repoRoot },
    )
    expect(JSON.parse(stdout)).toEqual({ loaded: false })
  })
})

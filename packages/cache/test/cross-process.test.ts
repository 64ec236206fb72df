import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { harness, sleep } from './support/harness.js'
import type { Harness } from './support/harness.js'
import type { Cache } from '@strata/cache'
import { redisUrl } from '../../../test/support/redis.js'

let h: Harness
let a: Cache
let child: ChildProcess
let seq = 0
const pending = new Map<number, (data: unknown) => void>()

function call<T>(cmd: string, extra: Record<string, unknown> = {}): Promise<T> {
  const id = ++seq
  return new Promise<T>((resolve) => {
    pending.set(id, resolve as (d: unknown) => void)
    child.send({ id, cmd, ...extra })
  })
}

beforeAll(async () => {
  h = harness('xproc')
  a = await h.make()
  const script = fileURLToPath(new URL('./support/cache-child.ts', import.meta.url))
  child = fork(script, [h.namespace, redisUrl()], {
    execArgv: ['--conditions=strata-source', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const started = new Promise<void>((resolve, reject) => {
    child.once('error', reject)
    child.on('message', (m: { id: number; data: unknown }) => {
      if (m.id === 0) return resolve()
      pending.get(m.id)?.(m.data)
      pending.delete(m.id)
    })
  })
  await started
  await call('ready')
})

afterAll(async () => {
  if (child?.connected) await call('close')
  if (child && child.exitCode === null) child.kill()
  await h?.cleanup()
})

describe('two processes', () => {
  it('a delete in one process evicts the other process L1 (propagation measured)', async () => {
    const samples: number[] = []
    for (let i = 0; i < 20; i++) {
      const key = `k${i}`
      await a.set(key, { i })
      expect(await call('get', { key })).toEqual({ i })
      expect(await call('peek', { key })).toEqual({ i })
      const evicted = call<number>('watchEviction', { key })
      await sleep(5)
      const t0 = performance.timeOrigin + performance.now()
      await a.delete(key)
      samples.push((await evicted) - t0)
      expect(await call('peek', { key })).toBeUndefined()
    }
    samples.sort((x, y) => x - y)
    console.log(
      `cross-process invalidation: p50 ${samples[10]!.toFixed(2)} ms, max ${samples.at(-1)!.toFixed(2)} ms`,
    )
  })

  it('a tag invalidation reaches the other process', async () => {
    await a.set('tagged', 1, { tags: ['t'] })
    expect(await call('get', { key: 'tagged' })).toBe(1)
    const evicted = call<number>('watchEviction', { key: 'tagged' })
    await a.deleteByTag('t')
    await evicted
    expect(await call('peek', { key: 'tagged' })).toBeUndefined()
    expect(await call('get', { key: 'tagged' })).toBeUndefined()
  })

  it('500 + 500 concurrent getOrSet in two processes run the factory once', async () => {
    let parentCalls = 0
    const parent = Promise.all(
      Array.from({ length: 500 }, () =>
        a.getOrSet('stampede', async () => {
          parentCalls++
          await sleep(100)
          return 'parent'
        }),
      ),
    )
    const fromChild = call<{ factoryCalls: number; values: string[] }>('stampede', {
      key: 'stampede',
      n: 500,
      delayMs: 100,
    })
    const [p, c] = await Promise.all([parent, fromChild])
    expect(parentCalls + c.factoryCalls).toBe(1)
    const winner = parentCalls === 1 ? 'parent' : 'child'
    expect(new Set(p)).toEqual(new Set([winner]))
    expect(c.values).toEqual([winner])
  })
})

import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisLock, lockErrors, RedisLockProvider } from '@strata/lock'
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test/support/redis.js'
import { registerLockSuite } from './support/lock-suite.js'

const run = promisify(execFile)
const prefixes: string[] = []
afterAll(async () => {
  await Promise.all(prefixes.map((p) => deletePrefix(p)))
})

registerLockSuite('redis', async () => {
  const prefix = uniquePrefix('lock')
  prefixes.push(prefix)
  const a = new Redis(redisUrl())
  const b = new Redis(redisUrl())
  const admin = new Redis(redisUrl())
  const provider = createRedisLock({ redis: a, prefix })
  const other = createRedisLock({ redis: b, prefix })
  return {
    provider,
    other,
    breakLock: async (key) => {
      await admin.del(`${prefix}{${key}}`)
    },
    cleanup: async () => {
      await provider.close()
      await other.close()
      await Promise.all([a.quit(), b.quit(), admin.quit()])
    },
  }
})

describe('Redis lock specifics', () => {
  const prefix = uniquePrefix('lock')
  prefixes.push(prefix)
  let redis: Redis
  beforeAll(() => {
    redis = new Redis(redisUrl())
  })
  afterAll(async () => {
    await redis.quit()
  })

  it('stores the owner token under a hash-tagged key next to a persistent fence counter', async () => {
    const locks = new RedisLockProvider({ redis, prefix })
    const lock = await locks.acquire('job:1', '10s')
    expect(locks.lockKey('job:1')).toBe(`${prefix}{job:1}`)
    expect(await redis.get(`${prefix}{job:1}`)).toBe(lock.owner)
    expect(Number(await redis.get(`${prefix}{job:1}:fence`))).toBe(lock.fence)
    const pttl = await redis.pttl(`${prefix}{job:1}`)
    expect(pttl).toBeGreaterThan(9000)
    await lock.release()
    expect(await redis.exists(`${prefix}{job:1}`)).toBe(0)
    expect(await redis.exists(`${prefix}{job:1}:fence`)).toBe(1)
    await locks.close()
  })

  it('release and extend compare the owner token in Lua (a foreign token is left alone)', async () => {
    const locks = createRedisLock({ redis, prefix })
    const lock = await locks.acquire('swap', '10s')
    // Someone else's token now sits in the key (e.g. after an expiry we did not observe).
    await redis.set(`${prefix}{swap}`, 'someone-else', 'PX', 10_000)
    const err = await lock.extend('10s').catch((e: unknown) => e)
    expect(lockErrors.is(err, 'STRATA_LOCK_NOT_HELD')).toBe(true)
    expect(lock.signal.aborted).toBe(true)
    expect(await redis.get(`${prefix}{swap}`)).toBe('someone-else')

    const lock2 = await locks.acquire('swap2', '10s')
    await redis.set(`${prefix}{swap2}`, 'someone-else', 'PX', 10_000)
    expect(
      lockErrors.is(await lock2.release().catch((e: unknown) => e), 'STRATA_LOCK_NOT_HELD'),
    ).toBe(true)
    expect(await redis.get(`${prefix}{swap2}`)).toBe('someone-else')
    await locks.close()
  })

  it('creates and closes its own client from a url; waits no longer than the holder PTTL', async () => {
    const locks = createRedisLock({ url: redisUrl(), prefix })
    const held = await locks.acquire('short', 120)
    const t0 = Date.now()
    // Back-off is capped by the holder's remaining TTL (~120 ms), not the 30–60 s delay asked
    // for: a bound 100 times the expected wait still tells the two apart on a loaded machine.
    const next = await locks.acquire('short', '1s', {
      minDelay: 60_000,
      maxDelay: 60_000,
      wait: '120s',
    })
    expect(Date.now() - t0).toBeLessThan(15_000)
    expect(next.fence).toBe(held.fence + 1)
    await next.release()
    await locks.close()
    expect(
      lockErrors.is(await locks.acquire('x', '1s').catch((e: unknown) => e), 'STRATA_LOCK_CLOSED'),
    ).toBe(true)
  })

  it('fails fast with STRATA_LOCK_BACKEND when Redis is unreachable (never hangs)', async () => {
    const srv = createServer()
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()))
    const port = (srv.address() as AddressInfo).port
    await new Promise((r) => srv.close(r)) // nothing listens there any more
    const locks = createRedisLock({ url: `redis://127.0.0.1:${port}`, prefix })
    const t0 = Date.now()
    const err = await locks.acquire('down', '1s').catch((e: unknown) => e)
    expect(lockErrors.is(err, 'STRATA_LOCK_BACKEND')).toBe(true)
    // Refused connections give up after a few quick retries (a few hundred ms): this bound is
    // over 10 times that, and still far below a client that keeps reconnecting.
    expect(Date.now() - t0).toBeLessThan(5000)
    await locks.close()
  })

  it('a hung Redis (SIGSTOP) fails acquire within the command timeout; the lock then works again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-lock-hung-'))
    const srv = createServer()
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()))
    const port = (srv.address() as AddressInfo).port
    await new Promise((r) => srv.close(r))
    await run('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--daemonize', 'yes', '--save', '', '--appendonly', 'no', '--dir', dir, '--pidfile', join(dir, 'r.pid')]) // prettier-ignore
    let pid = 0
    for (let i = 0; i < 50 && !pid; i++) {
      pid = Number.parseInt(await readFile(join(dir, 'r.pid'), 'utf8').catch(() => ''), 10) || 0
      if (!pid) await sleep(50)
    }
    // SIGSTOP goes to this pid: it must be the server just started, nothing else.
    expect(await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => `no process ${pid}`)).toBe(
      'redis-server\n',
    )
    const locks = createRedisLock({
      url: `redis://127.0.0.1:${port}`,
      prefix,
      commandTimeoutMs: 300,
    })
    try {
      const first = await locks.acquire('hung', '5s')
      expect(first.fence).toBeGreaterThan(0)
      process.kill(pid, 'SIGSTOP')
      const t0 = Date.now()
      const err = await locks.acquire('hung-2', '5s').catch((e: unknown) => e)
      expect(lockErrors.is(err, 'STRATA_LOCK_BACKEND')).toBe(true)
      // The 300 ms command timeout, not a hang: generous for a loaded machine.
      expect(Date.now() - t0).toBeLessThan(5000)
      process.kill(pid, 'SIGCONT')
      const again = await locks.acquire('hung-3', '5s')
      expect(again.held).toBe(true)
    } finally {
      await locks.close()
      try {
        process.kill(pid, 'SIGCONT')
        process.kill(pid, 'SIGKILL')
      } catch {
        /* already gone */
      }
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('rejects a provider without a client or url, or with a bad url', () => {
    expect(() => createRedisLock({ prefix })).toThrow(/needs `redis`/)
    const err = (() => {
      try {
        createRedisLock({ url: 'http://example.com', prefix })
      } catch (e) {
        return e
      }
    })()
    expect(lockErrors.is(err, 'STRATA_LOCK_INVALID_OPTIONS')).toBe(true)
  })
})

// One contract suite for every LockProvider implementation (Redis, Redis Cluster, Postgres).
// Each backend's test file calls registerLockSuite with a factory; the fenced resource used by
// the fencing test is a real Postgres row in a database created for the suite.
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { lockErrors } from '@strata/lock'
import type { Lock, LockProvider } from '@strata/lock'
import { createTestDatabase } from '../../../../test/support/pg.js'
import type { TestDatabase } from '../../../../test/support/pg.js'

export interface LockFixture {
  /** The provider under test. */
  provider: LockProvider
  /** A second provider with its own connections, standing in for another process. */
  other: LockProvider
  /** Takes the lock away behind the holder's back (DEL the key / end the session). */
  breakLock(key: string): Promise<void>
  cleanup(): Promise<void>
}

export type LockFixtureFactory = (ctx: { databaseUrl: string }) => Promise<LockFixture>

let keySeq = 0
const newKey = (name: string) => `${name}-${Date.now().toString(36)}-${++keySeq}`

/** Resolves when `signal` aborts; rejects (naming `what`) if that takes longer than `ms`. */
function aborted(signal: AbortSignal, what: string, ms = 10_000): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not aborted after ${ms} ms`)), ms)
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        resolve()
      },
      { once: true },
    )
  })
}

/** Waits until the clock is past `epochMs` (for tests about TTLs: there, time is the behaviour). */
async function untilPast(epochMs: number): Promise<void> {
  while (Date.now() <= epochMs) await sleep(epochMs - Date.now() + 1)
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
    return undefined
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

export function registerLockSuite(name: string, factory: LockFixtureFactory): void {
  describe(`LockProvider contract: ${name}`, () => {
    let db: TestDatabase
    let resource: pg.Pool
    let fx: LockFixture
    let locks: LockProvider
    let other: LockProvider

    beforeAll(async () => {
      db = await createTestDatabase('lock')
      resource = new pg.Pool({ connectionString: db.url, max: 4 })
      resource.on('error', () => {}) // DROP DATABASE … WITH (FORCE) ends its idle clients
      await resource.query(
        'CREATE TABLE fenced (id int PRIMARY KEY, value text NOT NULL, fence bigint NOT NULL)',
      )
      fx = await factory({ databaseUrl: db.url })
      locks = fx.provider
      other = fx.other
    })

    afterAll(async () => {
      await fx?.cleanup()
      await resource?.end()
      await db?.drop()
    })

    const heldByTest: Lock[] = []
    afterEach(async () => {
      await Promise.allSettled(heldByTest.splice(0).map((l) => l.release()))
    })
    const track = (l: Lock) => (heldByTest.push(l), l)

    it('acquires and releases; a released key can be acquired again', async () => {
      const key = newKey('basic')
      const a = await locks.acquire(key, '5s')
      expect(a.held).toBe(true)
      expect(a.key).toBe(key)
      // A key never locked before starts its own counter (Redis: from its clock, see acquire-2).
      expect(Number.isSafeInteger(a.fence) && a.fence > 0).toBe(true)
      expect(a.expiresAt).toBeGreaterThan(Date.now())
      await a.release()
      expect(a.held).toBe(false)
      await a.release() // idempotent after a successful release
      const b = track(await other.acquire(key, '5s', { attempts: 1 }))
      expect(b.fence).toBeGreaterThan(a.fence)
    })

    it('refuses a held key with STRATA_LOCK_NOT_ACQUIRED after the bounded wait', async () => {
      const key = newKey('busy')
      track(await locks.acquire(key, '5s'))
      expect(await codeOf(other.acquire(key, '5s', { attempts: 1 }))).toBe(
        'STRATA_LOCK_NOT_ACQUIRED',
      )
      // It retried for the whole wait (a lower bound: load only makes it longer).
      const t0 = Date.now()
      const waited = await other
        .acquire(key, '5s', { wait: 150, minDelay: 10 })
        .catch((e: unknown) => e)
      expect(Date.now() - t0).toBeGreaterThanOrEqual(140)
      expect(lockErrors.is(waited, 'STRATA_LOCK_NOT_ACQUIRED')).toBe(true)
      expect((waited as { details: { attempts: number } }).details.attempts).toBeGreaterThan(1)
      // The same provider is no more privileged than another process.
      expect(await codeOf(locks.acquire(key, '5s', { attempts: 1 }))).toBe(
        'STRATA_LOCK_NOT_ACQUIRED',
      )
    })

    it('keeps N concurrent contenders from ever overlapping', async () => {
      const key = newKey('mutex')
      let inside = 0
      let maxInside = 0
      let counter = 0
      const contenders = 12
      await Promise.all(
        Array.from({ length: contenders }, (_, i) =>
          (i % 2 ? other : locks).using(
            key,
            '5s',
            async () => {
              inside++
              maxInside = Math.max(maxInside, inside)
              // Read-modify-write with a gap: any overlap loses an increment.
              const read = counter
              await sleep(Math.random() * 5)
              counter = read + 1
              inside--
            },
            { wait: '20s', minDelay: 2, maxDelay: 20 },
          ),
        ),
      )
      expect(maxInside).toBe(1)
      expect(counter).toBe(contenders)
    })

    it('lets only the owner release: a holder whose TTL passed cannot free the next holder', async () => {
      const key = newKey('owner')
      const a = await locks.acquire(key, 150)
      await aborted(a.signal, 'A past its 150 ms TTL')
      const b = track(await other.acquire(key, '5s', { wait: '10s', minDelay: 10 }))
      expect(await codeOf(a.release())).toBe('STRATA_LOCK_NOT_HELD')
      expect(await codeOf(a.extend('5s'))).toBe('STRATA_LOCK_NOT_HELD')
      expect(b.held).toBe(true)
      expect(await codeOf(locks.acquire(key, '5s', { attempts: 1 }))).toBe(
        'STRATA_LOCK_NOT_ACQUIRED',
      )
    })

    it('extend keeps the lock past its original TTL', async () => {
      const key = newKey('extend')
      const a = track(await locks.acquire(key, 1000))
      const before = a.expiresAt
      await locks.extend(a, '30s')
      expect(a.expiresAt).toBeGreaterThan(before + 20_000)
      await untilPast(before + 300) // past the original TTL, on the server too
      expect(a.held).toBe(true)
      expect(a.signal.aborted).toBe(false)
      expect(await codeOf(other.acquire(key, '5s', { attempts: 1 }))).toBe(
        'STRATA_LOCK_NOT_ACQUIRED',
      )
    })

    it('TTL expiry lets another owner acquire and aborts the old holder with STRATA_LOCK_LOST', async () => {
      const key = newKey('ttl')
      const a = await locks.acquire(key, 200)
      expect(await codeOf(other.acquire(key, '5s', { attempts: 1 }))).toBe(
        'STRATA_LOCK_NOT_ACQUIRED',
      )
      const b = track(await other.acquire(key, '5s', { wait: '10s', minDelay: 10, maxDelay: 50 }))
      // Not before A's TTL ran out (a.expiresAt is no later than the backend's expiry).
      expect(Date.now()).toBeGreaterThanOrEqual(a.expiresAt)
      expect(b.fence).toBeGreaterThan(a.fence)
      await aborted(a.signal, 'A after its TTL')
      expect(a.held).toBe(false)
      expect((a.signal.reason as { code?: string }).code).toBe('STRATA_LOCK_LOST')
    })

    it('fencing tokens strictly increase across owners', async () => {
      const key = newKey('fence')
      const tokens: number[] = []
      for (let i = 0; i < 6; i++) {
        const l = await (i % 2 ? other : locks).acquire(key, '5s', { attempts: 1 })
        tokens.push(l.fence)
        await l.release()
      }
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!)
      // Another key has its own counter: taking it does not move this key's.
      const o = track(await locks.acquire(newKey('fence-other'), '5s'))
      expect(Number.isSafeInteger(o.fence) && o.fence > 0).toBe(true)
      const next = track(await locks.acquire(key, '5s', { attempts: 1 }))
      expect(next.fence).toBe(tokens.at(-1)! + 1)
    })

    it('using() returns the result and releases; on throw it rethrows and still releases', async () => {
      const key = newKey('using')
      const result = await locks.using(key, '5s', (signal, lock) => {
        expect(signal.aborted).toBe(false)
        expect(lock.held).toBe(true)
        return 42
      })
      expect(result).toBe(42)
      const boom = new Error('boom')
      await expect(
        locks.using(key, '5s', async () => {
          throw boom
        }),
      ).rejects.toBe(boom)
      const again = track(await other.acquire(key, '5s', { attempts: 1 }))
      expect(again.held).toBe(true)
    })

    it('using() keeps extending the lock while fn runs past the TTL (watchdog)', async () => {
      const key = newKey('watchdog')
      let contested: string | undefined
      let sawAbort = true
      let extendedTo = 0
      let firstExpiry = 0
      // A 1.5 s TTL, extended every 500 ms: a margin of a second for a busy event loop.
      await locks.using(key, 1500, async (signal, lock) => {
        firstExpiry = lock.expiresAt
        await untilPast(firstExpiry + 300) // only the watchdog's extends keep it now
        contested = await codeOf(other.acquire(key, '5s', { attempts: 1 }))
        extendedTo = lock.expiresAt
        await untilPast(firstExpiry + 1500)
        sawAbort = signal.aborted
      })
      expect(extendedTo).toBeGreaterThan(firstExpiry)
      expect(contested).toBe('STRATA_LOCK_NOT_ACQUIRED')
      expect(sawAbort).toBe(false)
      track(await other.acquire(key, '5s', { attempts: 1 }))
    })

    it('using() aborts its signal and rejects with STRATA_LOCK_LOST when the lock is taken away', async () => {
      const key = newKey('lost')
      let aborted = false
      const run = locks.using(key, 300, async (signal) => {
        await fx.breakLock(key)
        await new Promise<void>((resolve) => {
          if (signal.aborted) return resolve()
          signal.addEventListener('abort', () => resolve(), { once: true })
          setTimeout(resolve, 10_000).unref()
        })
        aborted = signal.aborted
        return 'done'
      })
      expect(await codeOf(run)).toBe('STRATA_LOCK_LOST')
      expect(aborted).toBe(true)
    })

    it("rejects a paused holder's late write through its fencing token", async () => {
      const key = newKey('fenced')
      await resource.query(
        `INSERT INTO fenced (id, value, fence) VALUES (1, 'init', 0)
         ON CONFLICT (id) DO UPDATE SET value = 'init', fence = 0`,
      )
      const write = async (value: string, token: number) =>
        (
          await resource.query(
            'UPDATE fenced SET value = $1, fence = $2 WHERE id = 1 AND fence < $2',
            [value, token],
          )
        ).rowCount
      const a = await locks.acquire(key, 200)
      const t1 = a.fence
      // A "pauses" (GC, SIGSTOP…) past its TTL without noticing; B waits for the lock.
      const b = await other.acquire(key, '5s', { wait: '10s', minDelay: 10 })
      const t2 = b.fence
      expect(t2).toBeGreaterThan(t1)
      expect(await write('B', t2)).toBe(1)
      await b.release()
      expect(await write('A-late', t1)).toBe(0) // rejected: a newer holder already wrote
      const { rows } = await resource.query('SELECT value, fence FROM fenced WHERE id = 1')
      expect(rows[0]).toEqual({ value: 'B', fence: String(t2) })
      await aborted(a.signal, 'A after its TTL')
    })

    it('validates input with stable codes and honours an abort signal while waiting', async () => {
      expect(await codeOf(locks.acquire('k', 0))).toBe('STRATA_LOCK_INVALID_TTL')
      expect(await codeOf(locks.acquire('k', '-1s'))).toBe('STRATA_LOCK_INVALID_TTL')
      expect(await codeOf(locks.acquire('', '1s'))).toBe('STRATA_LOCK_INVALID_KEY')
      expect(await codeOf(locks.acquire('k', '1s', { attempts: 0 }))).toBe(
        'STRATA_LOCK_INVALID_OPTIONS',
      )
      const key = newKey('abort')
      track(await locks.acquire(key, '120s'))
      // Back-off of a minute (the holder's TTL does not cap it): only the abort can end the
      // wait within the test, so an abort that is not heard mid-sleep fails here.
      const ac = new AbortController()
      const waiting = codeOf(
        other.acquire(key, '5s', {
          wait: '120s',
          minDelay: 60_000,
          maxDelay: 60_000,
          signal: ac.signal,
        }),
      )
      setTimeout(() => ac.abort(), 50)
      const outcome = await Promise.race([
        waiting,
        sleep(15_000, 'still waiting 15 s after the abort', { ref: false }),
      ])
      expect(outcome).toBe('STRATA_LOCK_ABORTED')
      expect(lockErrors.is(lockErrors.create('STRATA_LOCK_LOST'), 'STRATA_LOCK_LOST')).toBe(true)
    })
  })
}

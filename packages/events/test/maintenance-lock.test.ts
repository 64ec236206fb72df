// Session cleanup and the writer's maintenance with a shared lock: two instances (each with
// its own Redis-backed provider on one prefix), one run at a time, and no waiting for it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '@strata/pg'
import { createRedisLock, type LockProvider } from '@strata/lock'
import {
  GroupCommitWriter,
  ProjectStore,
  SESSION_CLEANUP_LOCK,
  SessionStore,
  WRITER_MAINTENANCE_LOCK,
} from '@strata/events'
import { deletePrefix, redisUrl, uniquePrefix } from '../../../test/support/redis.js'
import { eventsTestDb, type EventsTestDb } from './support/events-db.js'

let t: EventsTestDb
let projectId: string
const prefix = uniquePrefix('events-lock')
let locksA: LockProvider
let locksB: LockProvider

beforeAll(async () => {
  t = await eventsTestDb('evl')
  projectId = (await new ProjectStore(t.db).createProject('maintenance-lock')).project.id
  locksA = createRedisLock({ url: redisUrl(), prefix })
  locksB = createRedisLock({ url: redisUrl(), prefix })
})
afterAll(async () => {
  await Promise.all([locksA?.close(), locksB?.close()])
  await deletePrefix(prefix)
  await t?.close()
})

/**
 * `db` whose `method` calls (those `match` picks) wait until `open()`: the instance using it
 * stays inside its run, lock held, for as long as the test needs. `entered` resolves when a
 * call first waits.
 */
function gated(db: Database, method: 'query' | 'transaction', match: (args: unknown[]) => boolean) {
  let open!: () => void
  let entered!: () => void
  const gate = new Promise<void>((r) => (open = r))
  const reached = new Promise<void>((r) => (entered = r))
  const wrapped = new Proxy(db, {
    get(target, key) {
      const v = Reflect.get(target, key) as unknown
      if (typeof v !== 'function') return v
      const fn = (v as (...a: unknown[]) => unknown).bind(target)
      if (key !== method) return fn
      return async (...args: unknown[]) => {
        if (match(args)) {
          entered()
          await gate
        }
        return fn(...args)
      }
    },
  })
  return { db: wrapped, open, entered: reached }
}

describe('session cleanup with a lock', () => {
  it('runs on one instance at a time; the other skips at once instead of waiting', async () => {
    await t.db.query(
      `INSERT INTO user_sessions (project_id, session_id, user_id, created_at, expires_at) VALUES ($1, 'lock-old', 'u', now() - interval '9 days', now() - interval '2 days')`,
      [projectId],
    )
    const slow = gated(t.db, 'transaction', () => true)
    const a = new SessionStore(slow.db, { retention: 0, lock: locksA })
    const b = new SessionStore(t.db, { retention: 0, lock: locksB })

    const runA = a.cleanup()
    await slow.entered // a holds SESSION_CLEANUP_LOCK and is inside its run
    // Resolves while a's run is still held open: b did not wait for the lock.
    expect(await b.cleanup()).toBeNull()
    slow.open()
    expect(await runA).toBeGreaterThanOrEqual(1)

    // Released when a's run ended: b's next run goes ahead.
    expect(await b.cleanup()).toBe(0)
    await Promise.all([a.close(), b.close()])
  })

  it('skips while anyone holds the key', async () => {
    const store = new SessionStore(t.db, { retention: 0, lock: locksA })
    const held = await locksB.acquire(SESSION_CLEANUP_LOCK, '10s')
    expect(await store.cleanup()).toBeNull()
    await held.release()
    expect(await store.cleanup()).not.toBeNull()
    await store.close()
  })
})

describe('writer maintenance with a lock', () => {
  it('runs on one instance at a time; the other skips at once instead of waiting', async () => {
    const slow = gated(t.db, 'query', (args) => {
      const options = args[2] as { label?: string } | undefined
      return options?.label === 'events.retention'
    })
    const a = new GroupCommitWriter(slow.db, { lock: locksA })
    const b = new GroupCommitWriter(t.db, { lock: locksB })

    const runA = a.maintain()
    await slow.entered // a holds WRITER_MAINTENANCE_LOCK and is inside its pass
    expect(await b.maintain()).toBeNull()
    slow.open()
    expect(await runA).toEqual({ created: expect.any(Number), dropped: expect.any(Array) })

    expect(await b.maintain()).not.toBeNull()
    const held = await locksA.acquire(WRITER_MAINTENANCE_LOCK, '10s')
    expect(await b.maintain()).toBeNull()
    await held.release()
    await Promise.all([a.close(), b.close()])
  })
})

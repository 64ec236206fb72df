import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '@strata/pg'
import { ProjectStore, SessionStore } from '@strata/events'
import { eventsTestDb, type EventsTestDb } from './support/events-db.js'

let t: EventsTestDb
let projectId: string
const calls = new Map<string, number>()
let counted: Database

beforeAll(async () => {
  t = await eventsTestDb('evs')
  projectId = (await new ProjectStore(t.db).createProject('sessions')).project.id
  // Counts queries by label, to see what reaches Postgres.
  counted = new Proxy(t.db, {
    get(target, key) {
      if (key === 'query')
        return (sql: string, params?: unknown[], options?: { label?: string }) => {
          const label = options?.label ?? '?'
          calls.set(label, (calls.get(label) ?? 0) + 1)
          return target.query(sql, params, options)
        }
      const v = Reflect.get(target, key) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
})
afterAll(async () => {
  await t?.close()
})

describe('SessionStore', () => {
  it('validates from the cache after the first read', async () => {
    const store = new SessionStore(counted, { cacheTtl: '1m' })
    const { sessionId } = await store.create({ projectId, userId: 'u' })
    calls.clear()
    for (let i = 0; i < 50; i++)
      expect(await store.validate(projectId, sessionId)).toMatchObject({ userId: 'u' })
    expect(calls.get('events.sessions.get')).toBe(1)
    expect(await store.validate(projectId, 'missing')).toBeNull()
    await store.close()
  })

  it('coalesces touches: one UPDATE per flush for any number of touches', async () => {
    const store = new SessionStore(counted, { touchInterval: '1h' })
    const t1 = (await store.create({ projectId, userId: 'u' })).sessionId
    const t2 = (await store.create({ projectId, userId: 'u' })).sessionId
    calls.clear()
    for (let i = 0; i < 100; i++) await store.touch(projectId, i % 2 ? t1 : t2)
    expect(calls.get('events.sessions.touch') ?? 0).toBe(0)
    await store.flushTouches()
    expect(calls.get('events.sessions.touch')).toBe(1)
    const rows = await t.db.query<{ d: number }>(
      `SELECT extract(epoch FROM last_activity_at - created_at)::float AS d FROM user_sessions WHERE session_id IN ($1, $2)`,
      [t1, t2],
    )
    expect(rows.rows).toHaveLength(2)
    for (const r of rows.rows) expect(r.d).toBeGreaterThan(0)
    await store.close()
  })

  it('ends a session (logout); it is no longer valid', async () => {
    const store = new SessionStore(t.db)
    const s = await store.create({ projectId, userId: 'u', expiresIn: '1h' })
    expect(Date.parse(s.expiresAt) - Date.now()).toBeGreaterThan(3_500_000)
    expect(await store.validate(projectId, s.sessionId)).not.toBeNull()
    expect(await store.end(projectId, s.sessionId)).toBe(true)
    expect(await store.validate(projectId, s.sessionId)).toBeNull()
    expect(await store.end(projectId, s.sessionId)).toBe(false)
    await store.close()
  })

  it('cleanup deletes long-expired sessions and runs on one instance at a time', async () => {
    const store = new SessionStore(t.db, { retention: 0 })
    await t.db.query(
      `INSERT INTO user_sessions (project_id, session_id, user_id, created_at, expires_at) VALUES ($1, 'old-1', 'u', now() - interval '9 days', now() - interval '2 days')`,
      [projectId],
    )
    const holder = new pg.Client({ connectionString: t.tdb.url })
    await holder.connect()
    await holder.query('BEGIN')
    await holder.query(`SELECT pg_advisory_xact_lock('6004234345562235715'::bigint)`)
    expect(await store.cleanup()).toBeNull() // another instance holds the lock
    await holder.query('COMMIT')
    await holder.end()
    expect(await store.cleanup()).toBeGreaterThanOrEqual(1)
    const left = await t.db.query(`SELECT 1 FROM user_sessions WHERE session_id = 'old-1'`)
    expect(left.rowCount).toBe(0)
    await store.close()
  })
})

describe('SessionStore with @strata/cache injected', () => {
  it('serves hits from the cache, does not cache misses, and logout invalidates', async () => {
    const { createCache } = await import('@strata/cache')
    const cache = createCache({ namespace: `sess-${Date.now()}` })
    const store = new SessionStore(counted, { cache, cacheTtl: '1m' })
    expect(await store.validate(projectId, 'ses_sc-1')).toBeNull()
    // The same id created meanwhile (another instance): the miss above was not cached.
    await t.db.query(
      `INSERT INTO user_sessions (project_id, session_id, user_id, expires_at) VALUES ($1, 'ses_sc-1', 'u', now() + interval '1 hour')`,
      [projectId],
    )
    expect(await store.validate(projectId, 'ses_sc-1')).toMatchObject({ userId: 'u' })
    const { sessionId } = await store.create({ projectId, userId: 'u' })
    calls.clear()
    for (let i = 0; i < 20; i++)
      expect(await store.validate(projectId, sessionId)).toMatchObject({ userId: 'u' })
    expect(calls.get('events.sessions.get')).toBe(1)
    expect(await store.end(projectId, sessionId)).toBe(true)
    expect(await store.validate(projectId, sessionId)).toBeNull()
    await store.close()
    await cache.close()
  })
})

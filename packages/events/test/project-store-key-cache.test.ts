import { randomBytes } from 'node:crypto'
import type { Database } from '@strata/pg'
import { ProjectStore } from '@strata/events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventsTestDb, type EventsTestDb } from './support/events-db.js'

let t: EventsTestDb
beforeAll(async () => {
  t = await eventsTestDb('evkc')
})
afterAll(async () => {
  await t?.close()
})

/** The database, counting the key lookups that reach it. */
function counting(db: Database): { db: Database; lookups: () => number } {
  let n = 0
  const proxy = new Proxy(db, {
    get(target, prop, receiver) {
      if (prop === 'query')
        return (sql: string, params?: unknown[], opts?: { label?: string }) => {
          if (opts?.label === 'events.keys.verify') n++
          return target.query(sql, params, opts)
        }
      const v = Reflect.get(target, prop, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
  return { db: proxy, lookups: () => n }
}

const madeUpKey = () => `sk_w_${randomBytes(32).toString('base64url')}`

describe('ProjectStore key cache', () => {
  it('a flood of unknown keys does not push known keys out of the cache', async () => {
    const c = counting(t.db)
    const store = new ProjectStore(c.db, { keyCacheTtl: '1m', keyCacheMaxEntries: 100 })
    const { keys } = await store.createProject('cache')
    expect(await store.verifyKey(keys.write)).toMatchObject({ kind: 'write' })
    expect(c.lookups()).toBe(1)

    // Ten times the known-key cache's size in made-up keys: each is looked up once...
    for (let i = 0; i < 1000; i++) expect(await store.verifyKey(madeUpKey())).toBeNull()
    expect(c.lookups()).toBe(1001)

    // ...and the known key is still answered from memory.
    expect(await store.verifyKey(keys.write)).toMatchObject({ kind: 'write' })
    expect(c.lookups()).toBe(1001)
  })

  it('remembers an unknown key (a misconfigured client repeating it) in its own cache', async () => {
    const c = counting(t.db)
    const store = new ProjectStore(c.db, { keyCacheTtl: '1m' })
    const wrong = madeUpKey()
    for (let i = 0; i < 5; i++) expect(await store.verifyKey(wrong)).toBeNull()
    expect(c.lookups()).toBe(1)
  })

  it('a wrong secret under a known prefix and a revoked key still fail', async () => {
    const store = new ProjectStore(t.db, { keyCacheTtl: '1m' })
    const { project, keys } = await store.createProject('cache-2')
    const forged = keys.write.slice(0, 16) + 'A'.repeat(keys.write.length - 16)
    expect(await store.verifyKey(keys.write)).not.toBeNull()
    expect(await store.verifyKey(forged)).toBeNull()
    const listed = await store.listKeys(project.id)
    await store.revokeKey(listed.find((k) => k.kind === 'write')!.id)
    expect(await store.verifyKey(keys.write)).toBeNull()
  })
})

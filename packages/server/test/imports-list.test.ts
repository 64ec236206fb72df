import { importerMigrations } from '@strata/importer'
import type { Database } from '@strata/pg'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testApp, type TestApp } from './support/test-app.js'

const TOKEN = 'operator-token-for-import-list-tests'
const auth = { authorization: `Bearer ${TOKEN}` }
let fx: TestApp
let db: Database
let app: FastifyInstance
/** Top-level job ids, newest first. */
const ids: string[] = []

async function insertJob(createdAt: string, status: string, parentId?: string): Promise<string> {
  const res = await db.query<{ id: string }>(
    `INSERT INTO data_import_jobs (spec, status, created_at, parent_id, rows_read, rows_loaded)
     VALUES ('{"target":{"table":"people"}}', $1, $2, $3, 10, 9) RETURNING id`,
    [status, createdAt, parentId ?? null],
  )
  return res.rows[0]!.id
}

beforeAll(async () => {
  fx = await testApp('implist', {
    config: { adminToken: TOKEN },
    migrations: [importerMigrations],
    prepare: async (d) => {
      db = d
      // Five jobs; two share a created_at (down to the microsecond) so the id breaks the tie.
      const times = [
        '2026-01-05T00:00:00.000005Z',
        '2026-01-04T00:00:00.000004Z',
        '2026-01-04T00:00:00.000004Z',
        '2026-01-02T00:00:00.000002Z',
        '2026-01-01T00:00:00.000001Z',
      ]
      const statuses = ['running', 'completed', 'failed', 'completed', 'paused']
      const made = await Promise.all(times.map((t, i) => insertJob(t, statuses[i]!)))
      // Expected order: created_at DESC, then id DESC.
      const order = made
        .map((id, i) => ({ id, t: times[i]! }))
        .sort((a, b) => (a.t === b.t ? (a.id < b.id ? 1 : -1) : a.t < b.t ? 1 : -1))
      ids.push(...order.map((o) => o.id))
      // A chunk of the newest job: not listed on its own.
      await insertJob('2026-01-06T00:00:00Z', 'completed', ids[0])
    },
  })
  app = fx.app
})
afterAll(async () => {
  await fx?.close()
})

const list = (query = '') =>
  app.inject({ method: 'GET', url: `/v1/imports${query}`, headers: auth })

describe('GET /v1/imports', () => {
  it('lists top-level jobs newest first with their counts', async () => {
    const res = await list()
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.items.map((j: { id: string }) => j.id)).toEqual(ids)
    expect(body.nextCursor).toBeNull()
    expect(body.items[0]).toMatchObject({
      status: 'running',
      parentId: null,
      counts: { read: 10, loaded: 9, rejected: 0, skipped: 0 },
    })
    expect(body.items[0]).not.toHaveProperty('baseDir')
  })

  it('pages with a keyset cursor, ties included', async () => {
    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const res = await list(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      expect(res.statusCode).toBe(200)
      const body = res.json()
      expect(body.items.length).toBeLessThanOrEqual(2)
      seen.push(...body.items.map((j: { id: string }) => j.id))
      cursor = body.nextCursor
      pages++
    } while (cursor && pages < 10)
    expect(pages).toBe(3)
    expect(seen).toEqual(ids)
  })

  it('filters by status (a comma list or repeated)', async () => {
    const one = (await list('?status=completed')).json()
    expect(one.items.map((j: { status: string }) => j.status)).toEqual(['completed', 'completed'])
    const two = (await list('?status=running,paused')).json()
    expect(two.items.map((j: { id: string }) => j.id)).toEqual([ids[0], ids[4]])
    const repeated = (await list('?status=running&status=paused')).json()
    expect(repeated.items).toHaveLength(2)
  })

  it('refuses bad parameters', async () => {
    for (const [query, parameter] of [
      ['?limit=0', 'limit'],
      ['?limit=abc', 'limit'],
      ['?cursor=not-a-cursor', 'cursor'],
      ['?status=done', 'status'],
      ['?limit=1&limit=2', 'limit'],
    ]) {
      const res = await list(query)
      expect(res.statusCode, query).toBe(400)
      expect(res.json().error).toMatchObject({
        code: 'STRATA_VALIDATION_FAILED',
        details: { parameter },
      })
    }
  })

  it('needs the operator token', async () => {
    expect((await app.inject({ method: 'GET', url: '/v1/imports' })).statusCode).toBe(401)
    const bad = await app.inject({
      method: 'GET',
      url: '/v1/imports',
      headers: { authorization: 'Bearer not-the-token' },
    })
    expect(bad.statusCode).toBe(401)
  })

  it('clamps the limit to 200', async () => {
    await db.query(
      `INSERT INTO data_import_jobs (spec, status, created_at)
       SELECT '{}', 'completed', timestamptz '2025-01-01' + n * interval '1 minute'
         FROM generate_series(1, 200) n`,
    )
    const body = (await list('?limit=100000')).json()
    expect(body.items).toHaveLength(200)
    expect(body.nextCursor).not.toBeNull()
  })
})

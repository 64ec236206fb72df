import { randomBytes } from 'node:crypto'
import { createCache, type Cache } from '@strata/cache'
import { eventsMigrations } from '@strata/events'
import { createDatabase, migrate, pgMigrations, type Database } from '@strata/pg'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'
import { deletePrefix, redisUrl } from '../../../test/support/redis.js'
import { PG_STAT_STATEMENTS_MISSING as STATEMENTS_MISSING } from '../../pg/test/support/components.js'
import { buildApp } from '../src/app.js'
import { defaultConfig } from '../src/config.js'

const TOKEN = 'operator-token-for-performance-tests'
const auth = { authorization: `Bearer ${TOKEN}` }
let tdb: TestDatabase
let db: Database
let app: FastifyInstance
let adminKey: string

beforeAll(async () => {
  tdb = await createTestDatabase('perf')
  db = await createDatabase({ url: tdb.url, monitor: { slowQueryMs: 150 } })
  await migrate(db, [pgMigrations, eventsMigrations])
  await db.query('CREATE TABLE widgets (id int PRIMARY KEY, name text)')
  await db.query("INSERT INTO widgets SELECT g, 'w' || g FROM generate_series(1, 500) g")
  app = await buildApp(defaultConfig({ databaseUrl: tdb.url, adminToken: TOKEN }), {
    db,
    logger: pino({ level: 'silent' }),
  })
  await app.ready()
  const res = await app.inject({
    method: 'POST',
    url: '/v1/projects',
    headers: auth,
    payload: { name: 'perf' },
  })
  adminKey = (res.json() as { keys: { admin: string } }).keys.admin
})
afterAll(async () => {
  await app?.close()
  await db?.close()
  await tdb?.drop()
})

const GETS = [
  '',
  '/health',
  '/queries',
  '/slow-queries',
  '/index-suggestions',
  '/pool',
  '/pool/leaks',
  '/long-running',
  '/locks',
  '/alerts',
  '/history?duration=1h',
]

describe('/v1/performance auth', () => {
  it('401 without credentials, 403 with a project admin key, 200 with the operator token', async () => {
    for (const path of GETS) {
      const url = `/v1/performance${path}`
      const none = await app.inject({ method: 'GET', url })
      expect(none.statusCode, url).toBe(401)
      expect(none.json().error.code).toBe('STRATA_AUTH_MISSING')
      const wrong = await app.inject({
        method: 'GET',
        url,
        headers: { authorization: 'Bearer nope-nope' },
      })
      expect(wrong.statusCode, url).toBe(401)
      const key = await app.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${adminKey}` },
      })
      expect(key.statusCode, url).toBe(403)
      const ok = await app.inject({ method: 'GET', url, headers: auth })
      expect(ok.statusCode, `${url}: ${ok.body}`).toBe(200)
    }
    for (const url of ['/v1/performance/reset', '/v1/performance/query-plan']) {
      expect((await app.inject({ method: 'POST', url, payload: {} })).statusCode).toBe(401)
      const key = await app.inject({
        method: 'POST',
        url,
        payload: {},
        headers: { authorization: `Bearer ${adminKey}` },
      })
      expect(key.statusCode).toBe(403)
    }
  })
})

describe('/v1/performance data', () => {
  it('summary, queries and slow queries reflect db.query traffic; reset clears the monitor only', async () => {
    await app.inject({ method: 'POST', url: '/v1/performance/reset', headers: auth, payload: {} })
    for (let i = 1; i <= 20; i++)
      await db.query(`SELECT name FROM widgets WHERE id = ${i}`, [], { label: 'GET /widgets/:id' })
    await db.query('SELECT pg_sleep(0.2)', [], { label: 'slow' })

    const summary = (
      await app.inject({ method: 'GET', url: '/v1/performance', headers: auth })
    ).json()
    // ≥: the app's own background work (event partitions, session cleanup) also uses app.db.
    expect(summary.queries.count).toBeGreaterThanOrEqual(21)
    expect(summary.queries.slowCount).toBeGreaterThanOrEqual(1)
    expect(summary.queries.topSlow.map((t: { sql: string }) => t.sql)).toContain(
      'SELECT pg_sleep($1)',
    )
    expect(summary.health.score).toBeGreaterThanOrEqual(0)
    expect(summary.health.components).toHaveProperty('database')
    expect(summary.process.eventLoop).toHaveProperty('delayP99Ms')
    expect(summary.pool).toHaveProperty('utilization')

    const q = (
      await app.inject({
        method: 'GET',
        url: '/v1/performance/queries?orderBy=count&limit=5',
        headers: auth,
      })
    ).json()
    expect(q.statements[0]).toMatchObject({
      sql: 'SELECT name FROM widgets WHERE id = $1',
      count: 20,
    })
    expect(q.patterns.byLabel['GET /widgets/:id'].count).toBe(20)
    expect(q.database, STATEMENTS_MISSING).toMatchObject({ available: true })

    const slow = (
      await app.inject({ method: 'GET', url: '/v1/performance/slow-queries', headers: auth })
    ).json()
    expect(slow.thresholdMs).toBe(150)
    expect(slow.items).toContainEqual(
      expect.objectContaining({ sql: 'SELECT pg_sleep($1)', label: 'slow' }),
    )

    const health = (
      await app.inject({ method: 'GET', url: '/v1/performance/health', headers: auth })
    ).json()
    expect(health.overall.status).toMatch(/excellent|good|degraded|critical/)
    // buildApp always has a cache (L1-only without REDIS_URL): it is scored.
    expect(health.components.cache).toMatchObject({ score: expect.any(Number) })

    const reset = await app.inject({
      method: 'POST',
      url: '/v1/performance/reset',
      headers: auth,
      payload: {},
    })
    expect(reset.json()).toMatchObject({ reset: 'monitor' })
    const after = (
      await app.inject({ method: 'GET', url: '/v1/performance', headers: auth })
    ).json()
    expect(after.queries.count).toBe(0)
  })

  it('alerts list every rule with state, since and value', async () => {
    const r = (
      await app.inject({ method: 'GET', url: '/v1/performance/alerts', headers: auth })
    ).json()
    expect(r.alerts.map((a: { name: string }) => a.name).sort()).toEqual(
      [
        'cache_hit_rate',
        'eventloop_delay_p99',
        'heap_used',
        'pool_utilization',
        'pool_waiting',
        'query_p95',
        'slow_query_share',
      ].sort(),
    )
    for (const a of r.alerts) {
      expect(['ok', 'pending', 'firing']).toContain(a.state)
      expect(Date.parse(a.since)).not.toBeNaN()
      expect(a).toHaveProperty('value')
    }
    expect(r.thresholds.slowQueryShare).toBe(0.05)
  })

  it('POST /query-plan explains one read-only statement and rejects the rest with a clear 400', async () => {
    const post = (payload: unknown) =>
      app.inject({
        method: 'POST',
        url: '/v1/performance/query-plan',
        headers: auth,
        payload: payload as object,
      })
    const ok = await post({
      sql: 'SELECT * FROM widgets WHERE id = $1',
      params: [3],
      analyze: true,
    })
    expect(ok.statusCode, ok.body).toBe(200)
    expect(ok.json()).toMatchObject({ analyzed: true, plan: { nodeType: expect.any(String) } })
    const generic = await post({ sql: 'SELECT * FROM widgets WHERE name = $1' })
    expect(generic.json().generic).toBe(true)

    for (const [payload, code] of [
      [{}, 'STRATA_VALIDATION_FAILED'],
      [{ sql: '' }, 'STRATA_VALIDATION_FAILED'],
      [{ sql: 'SELECT 1', extra: true }, 'STRATA_VALIDATION_FAILED'],
      [{ sql: 'SELECT 1', analyze: 'yes' }, 'STRATA_VALIDATION_FAILED'],
      [{ sql: 'DELETE FROM widgets' }, 'STRATA_DB_EXPLAIN_REJECTED'],
      [
        { sql: 'UPDATE widgets SET name = $1', params: ['x'], analyze: true },
        'STRATA_DB_EXPLAIN_REJECTED',
      ],
      [{ sql: 'SELECT 1; DROP TABLE widgets' }, 'STRATA_DB_EXPLAIN_REJECTED'],
      [{ sql: 'SELECT * FROM widgets FOR UPDATE' }, 'STRATA_DB_EXPLAIN_REJECTED'],
      [{ sql: 'SELECT pg_terminate_backend(1)', analyze: true }, 'STRATA_DB_EXPLAIN_REJECTED'],
      [{ sql: 'SELECT * FROM widgets WHERE id = $1', analyze: true }, 'STRATA_DB_EXPLAIN_REJECTED'],
    ] as const) {
      const res = await post(payload)
      expect(res.statusCode, JSON.stringify(payload)).toBe(400)
      expect(res.json().error.code, JSON.stringify(payload)).toBe(code)
    }
    // The operator's own mistakes while planning: 400 with PostgreSQL's words about their SQL.
    for (const [sql, state, words] of [
      ['SELECT * FROM no_such_table', '42P01', 'no_such_table'],
      ['SELECT no_such_column FROM widgets', '42703', 'no_such_column'],
      ["SELECT 'x'::int", '22P02', 'integer'],
    ] as const) {
      const res = await post({ sql })
      expect(res.statusCode, sql).toBe(400)
      expect(res.json().error, sql).toMatchObject({
        code: 'STRATA_DB_EXPLAIN_REJECTED',
        details: { reason: 'statement', sqlState: state },
      })
      expect(res.json().error.message, sql).toContain(words)
    }
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM widgets')
    expect(rows[0]!.n).toBe(500)
  })

  it('validates query strings (400) and answers 503 for cache routes without a cache', async () => {
    for (const url of [
      '/v1/performance/queries?orderBy=bogus',
      '/v1/performance/queries?limit=0',
      '/v1/performance/slow-queries?limit=abc',
      '/v1/performance/index-suggestions?method=magic',
      '/v1/performance/pool/leaks?minHeldMs=-1',
      '/v1/performance/long-running?minDurationMs=soon',
      '/v1/performance/history?duration=forever',
      '/v1/performance/history?duration=30d',
      '/v1/performance/queries?unknown=1',
    ]) {
      const res = await app.inject({ method: 'GET', url, headers: auth })
      expect(res.statusCode, url).toBe(400)
      expect(res.json().error.code, url).toBe('STRATA_VALIDATION_FAILED')
    }
    const term = await app.inject({
      method: 'POST',
      url: '/v1/performance/long-running/abc/terminate',
      headers: auth,
      payload: {},
    })
    expect(term.statusCode).toBe(400)
    const notOurs = await app.inject({
      method: 'POST',
      url: '/v1/performance/long-running/1/terminate',
      headers: auth,
      payload: {},
    })
    expect(notOurs.statusCode).toBe(403)
    expect(notOurs.json().error.code).toBe('STRATA_DB_NOT_OUR_SESSION')
    // Without any cache (a bare app), the cache routes answer 503.
    const bare = await buildApp(defaultConfig({ adminToken: TOKEN }), {
      db,
      logger: pino({ level: 'silent' }),
      overrides: { performance: { cache: null, evaluateEveryMs: 0, sampleStatements: false } },
    })
    await bare.ready()
    try {
      for (const [method, url] of [
        ['GET', '/v1/performance/cache'],
        ['GET', '/v1/performance/cache/hottest-keys'],
        ['GET', '/v1/performance/cache/warmup/status'],
        ['POST', '/v1/performance/cache/warmup'],
        ['POST', '/v1/performance/cache/clear'],
      ] as const) {
        const res = await bare.inject({
          method,
          url,
          headers: auth,
          ...(method === 'POST' ? { payload: { namespace: 'x' } } : {}),
        })
        expect(res.statusCode, url).toBe(503)
        expect(res.json().error.code).toBe('STRATA_NOT_READY')
      }
    } finally {
      await bare.close()
    }
    // With the app's own cache they answer.
    const c = await app.inject({ method: 'GET', url: '/v1/performance/cache', headers: auth })
    expect(c.statusCode).toBe(200)
    expect(c.json()).toHaveProperty('l1')
  })

  it('/metrics carries the process and database metrics under OTel/Prometheus names', async () => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
    for (const name of [
      'nodejs_eventloop_delay_p99_seconds',
      'nodejs_eventloop_utilization_ratio',
      'db_client_operation_duration_seconds_bucket',
      'db_client_connection_count{state="idle"',
      'db_client_connection_wait_time_seconds_bucket',
    ])
      expect(text).toContain(name)
  })
})

describe('/v1/performance cache routes (real Redis)', () => {
  let cache: Cache
  let capp: FastifyInstance
  const namespace = `strata-test-perf-${randomBytes(4).toString('hex')}`

  beforeAll(async () => {
    cache = createCache({ namespace, l2: { redis: redisUrl() }, metrics: false })
    await cache.ready()
    const warmers = {
      widgets: () =>
        Array.from({ length: 20 }, (_, i) => ({
          key: `widgets:w${i}`,
          factory: async () => ({ id: i }),
        })),
    }
    capp = await buildApp(defaultConfig({ adminToken: TOKEN }), {
      db,
      logger: pino({ level: 'silent' }),
      cache,
      overrides: { performance: { warmers, evaluateEveryMs: 0 } },
    })
    await capp.ready()
  })
  afterAll(async () => {
    await capp?.close()
    await cache?.close()
    await deletePrefix(namespace)
  })

  it('stats, hottest keys, warm-up with status, namespace-scoped clear', async () => {
    const warm = await capp.inject({
      method: 'POST',
      url: '/v1/performance/cache/warmup',
      headers: auth,
      payload: { warmer: 'widgets', concurrency: 4 },
    })
    expect(warm.statusCode, warm.body).toBe(202)
    expect(warm.json()).toMatchObject({ state: 'running', total: 20 })
    // Polled until it leaves 'running', however long the warm-up takes on a loaded machine.
    const status = await vi.waitFor(
      async () => {
        const s = (
          await capp.inject({
            method: 'GET',
            url: '/v1/performance/cache/warmup/status',
            headers: auth,
          })
        ).json()
        expect(s.state).not.toBe('running')
        return s
      },
      { timeout: 20_000, interval: 20 },
    )
    expect(status).toMatchObject({ state: 'done', done: 20, failed: 0 })

    const keep = cache.namespace('keep')
    await keep.set('k', 1)
    for (let i = 0; i < 50; i++) await cache.getOrSet('widgets:w1', () => 0)
    const stats = (
      await capp.inject({ method: 'GET', url: '/v1/performance/cache', headers: auth })
    ).json()
    expect(stats.l1.hits).toBeGreaterThan(0)
    const hot = (
      await capp.inject({
        method: 'GET',
        url: '/v1/performance/cache/hottest-keys?limit=3',
        headers: auth,
      })
    ).json()
    expect(hot.items.length).toBeLessThanOrEqual(3)

    expect(
      (
        await capp.inject({
          method: 'POST',
          url: '/v1/performance/cache/clear',
          headers: auth,
          payload: {},
        })
      ).statusCode,
    ).toBe(400)
    expect(
      (
        await capp.inject({
          method: 'POST',
          url: '/v1/performance/cache/clear',
          headers: auth,
          payload: { namespace: 'widgets*' },
        })
      ).statusCode,
    ).toBe(400)
    const cleared = await capp.inject({
      method: 'POST',
      url: '/v1/performance/cache/clear',
      headers: auth,
      payload: { namespace: 'widgets' },
    })
    expect(cleared.json()).toEqual({ cleared: 'widgets' })
    expect(await cache.namespace('widgets').get('w3')).toBeUndefined()
    expect(await keep.get('k')).toBe(1)

    const unknown = await capp.inject({
      method: 'POST',
      url: '/v1/performance/cache/warmup',
      headers: auth,
      payload: { warmer: 'nope' },
    })
    expect(unknown.statusCode).toBe(400)
  })
})

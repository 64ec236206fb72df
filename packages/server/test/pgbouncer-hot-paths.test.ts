// The service with DATABASE_URL_POOLED through a real PgBouncer in transaction mode (started
// here, stopped by pid): ingestion, key checks, sessions and analytics answer as they do on a
// direct connection, their statements reach PostgreSQL through PgBouncer, and the app asks
// the direct pool for none of them.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pg from 'pg'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase } from '../../../test/support/pg.js'
import { startPgbouncer, type Pgbouncer } from '../../../test/support/pgbouncer.js'
import { loadConfig } from '../src/config.js'
import { startService, type RunningService } from '../src/service.js'
import { ADMIN_TOKEN, count } from './support/ingest-fixture.js'
import { pooledFixture, type PooledFixture } from './support/pooled-fixture.js'

let bouncer: Pgbouncer
let f: PooledFixture

const FROM = '2026-10-25T00:00:00Z'
const TO = '2026-11-05T00:00:00Z'
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

beforeAll(async () => {
  bouncer = await startPgbouncer()
  f = await pooledFixture('pgbhot', bouncer, {
    // Batches of 50 take the writer's COPY path (a transaction of several statements), single
    // events its one-statement path, a resend its conflict-safe path.
    writer: { copyThreshold: 20 },
    performance: { evaluateEveryMs: 0, sampleStatements: false, warmers: {} },
  })
})
afterAll(async () => {
  await f?.close()
  await bouncer?.stop()
})

type StatsRow = { database: string; total_xact_count: string; total_query_count: string }
async function bouncerStats(): Promise<{ xacts: number; queries: number }> {
  const row = (await bouncer.admin<StatsRow>('SHOW STATS')).find((r) => r.database === f.tdb.name)
  return { xacts: Number(row?.total_xact_count ?? 0), queries: Number(row?.total_query_count ?? 0) }
}

const post = (url: string, payload: unknown, key = f.writeKey) =>
  f.app.inject({ method: 'POST', url, headers: bearer(key), payload: payload as object })
const get = (url: string, key = f.adminKey) =>
  f.app.inject({ method: 'GET', url, headers: bearer(key) })

function events(prefix: string, n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => {
    const base = {
      messageId: `${prefix}-${i}`,
      userId: `${prefix}-user-${i % 7}`,
      timestamp: new Date(Date.parse(FROM) + i * 5_000_000 + 123).toISOString(),
    }
    switch (i % 3) {
      case 0:
        return { ...base, type: 'login', method: i % 2 ? 'email' : 'google', success: i % 5 !== 0 }
      case 1:
        return { ...base, type: 'activity', action: 'view', entityType: 'doc' }
      default:
        return { ...base, type: 'track', event: 'Report Viewed', properties: { i } }
    }
  })
}

describe('DATABASE_URL_POOLED through PgBouncer (transaction mode)', () => {
  it('ingest, keys, sessions and analytics go through PgBouncer; the direct pool sees none of them', async () => {
    const before = await bouncerStats()

    // Ingestion: batches (the group-commit writer's single-statement and COPY flushes), a
    // resend counted as duplicates, Segment's batch route.
    const batch = events('p', 150)
    for (let i = 0; i < batch.length; i += 50) {
      const res = await post('/v1/events/batch', { events: batch.slice(i, i + 50) })
      expect(res.statusCode, res.body).toBe(202)
      expect(res.json()).toMatchObject({ accepted: 50, duplicates: 0 })
    }
    const again = await post('/v1/events/batch', { events: batch.slice(0, 10) })
    expect(again.json()).toMatchObject({ accepted: 0, duplicates: 10 })
    const segment = await post('/v1/batch', {
      batch: Array.from({ length: 5 }, (_, i) => ({
        type: 'track',
        messageId: `seg-${i}`,
        userId: 'seg-user',
        event: 'Signed Up',
      })),
    })
    expect(segment.statusCode, segment.body).toBe(200)
    expect(await count(f.db, 'login_events WHERE project_id = $1', [f.projectId])).toBe(50)
    expect(await count(f.db, 'activity_logs WHERE project_id = $1', [f.projectId])).toBe(50)
    expect(await count(f.db, 'events WHERE project_id = $1', [f.projectId])).toBe(55)

    // Keys: a new write key works at once, a revoked one stops at once.
    const created = await post(`/v1/projects/${f.projectId}/keys`, { kind: 'write' }, ADMIN_TOKEN)
    expect(created.statusCode, created.body).toBe(201)
    const { key, secret } = created.json() as { key: { id: string }; secret: string }
    expect(
      (await post('/v1/logins', { userId: 'k', method: 'email', success: true }, secret))
        .statusCode,
    ).toBe(202)
    const revoked = await f.app.inject({
      method: 'DELETE',
      url: `/v1/keys/${key.id}`,
      headers: bearer(ADMIN_TOKEN),
    })
    expect(revoked.statusCode).toBe(200)
    expect(
      (await post('/v1/logins', { userId: 'k', method: 'email', success: true }, secret))
        .statusCode,
    ).toBe(401)

    // Sessions: create, validate, touch, end.
    const session = await post('/v1/sessions', { userId: 'su' }, f.adminKey)
    expect(session.statusCode, session.body).toBe(201)
    const id = (session.json() as { session: { sessionId: string } }).session.sessionId
    expect((await get(`/v1/sessions/${id}`)).json()).toMatchObject({ valid: true })
    expect((await post(`/v1/sessions/${id}/touch`, {}, f.adminKey)).statusCode).toBe(200)
    const ended = await f.app.inject({
      method: 'DELETE',
      url: `/v1/sessions/${id}`,
      headers: bearer(f.adminKey),
    })
    expect(ended.statusCode).toBe(204)
    // Cleanup takes a transaction-scoped advisory lock: it holds through transaction pooling.
    expect(await f.services.sessions.cleanup()).toEqual(expect.any(Number))

    // Analytics: the aggregates (read-only transactions with SET LOCAL jit) and keyset lists.
    const range = `from=${FROM}&to=${TO}`
    const logins = await get(`/v1/analytics/logins?${range}&interval=day&tz=America/New_York`)
    expect(logins.statusCode, logins.body).toBe(200)
    const want = await f.db.query<{ n: number; s: number; u: number }>(
      `SELECT count(*)::int AS n, (count(*) FILTER (WHERE success))::int AS s,
              count(DISTINCT user_id)::int AS u
       FROM login_events WHERE project_id = $1 AND ts >= $2 AND ts < $3`,
      [f.projectId, FROM, TO],
    )
    expect(logins.json().totals).toMatchObject({
      logins: want.rows[0]!.n,
      successes: want.rows[0]!.s,
      uniqueUsers: want.rows[0]!.u,
    })
    expect(want.rows[0]!.n).toBe(50)
    const activity = await get(`/v1/analytics/activity?${range}&groupBy=action`)
    expect(activity.json()).toMatchObject({ totals: { activities: 50 }, groups: { view: 50 } })
    const active = await get(`/v1/analytics/active-users?${range}`)
    expect(active.statusCode, active.body).toBe(200)
    const sessions = await get(`/v1/analytics/sessions`)
    expect(sessions.statusCode, sessions.body).toBe(200)
    const recent = await get('/v1/analytics/recent-logins?limit=20')
    expect(recent.json().items).toHaveLength(20)
    const next = await get(
      `/v1/analytics/recent-logins?limit=20&cursor=${recent.json().nextCursor}`,
    )
    expect(next.json().items).toHaveLength(20)

    // Where it all went: PgBouncer served this database's transactions, the hot-path statements
    // ran (the pooled pool reports them to the primary's query monitor), and the direct pool
    // was asked for none of them.
    const after = await bouncerStats()
    expect(after.xacts - before.xacts).toBeGreaterThanOrEqual(10)
    const hot = /^(events|analytics)\./
    expect(f.direct.filter((l) => hot.test(l))).toEqual([])
    // Imports keep their session on the direct pool (and the recording sees it).
    const imports = await get('/v1/imports', ADMIN_TOKEN)
    expect(imports.statusCode, imports.body).toBe(200)
    expect(f.direct.some((l) => l.startsWith('importer.'))).toBe(true)
    const pooledLabels = Object.keys(f.services.db.monitor.stats().byLabel)
    for (const l of [
      'events.keys.verify',
      'events.keys.revoke',
      'events.sessions.create',
      'events.sessions.cleanup',
      'events.sessions.end',
      'analytics.logins',
      'analytics.activity',
      'analytics.recent-logins',
    ])
      expect(pooledLabels, l).toContain(l)
    const pools = await bouncer.admin<{ database: string; sv_active: string; sv_idle: string }>(
      'SHOW POOLS',
    )
    const pool = pools.find((p) => p.database === f.tdb.name)
    expect(pool).toBeDefined()
    expect(Number(pool!.sv_active) + Number(pool!.sv_idle)).toBeLessThanOrEqual(20)
  })

  it('transaction-scoped settings never stay behind on PgBouncer’s server connections', async () => {
    const direct = await f.db.query<{ jit: string }>("SELECT current_setting('jit') AS jit")
    // Aggregates in parallel (each SET LOCAL jit = off), then plain statements on every server
    // connection PgBouncer has: each sees the server's default again.
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        get(`/v1/analytics/logins?from=2026-10-${10 + (i % 9)}T00:00:00Z&to=${TO}`),
      ),
    )
    const seen = await Promise.all(
      Array.from({ length: 40 }, () =>
        f.pooledDb.query<{ jit: string; timeout: string }>(
          "SELECT current_setting('jit') AS jit, current_setting('statement_timeout') AS timeout, pg_sleep(0.01)",
        ),
      ),
    )
    // The server's default: a connection that sent no startup parameters.
    const plain = new pg.Client({ connectionString: f.tdb.url })
    await plain.connect()
    const server = await plain
      .query<{ timeout: string }>("SELECT current_setting('statement_timeout') AS timeout")
      .finally(() => plain.end())
    for (const r of seen)
      expect(r.rows[0]).toMatchObject({
        jit: direct.rows[0]!.jit,
        timeout: server.rows[0]!.timeout,
      })
  })
})

describe('strata start with DATABASE_URL_POOLED', () => {
  it('opens the PgBouncer pool, says where the hot paths go, and closes the pool on stop', async () => {
    const tdb = await createTestDatabase('pgbsvc')
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-pgbsvc-'))
    const lines: { msg?: string; level?: number }[] = []
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(JSON.parse(chunk.toString()) as { msg?: string })
          done()
        },
      }),
    )
    const clients = async () =>
      (await bouncer.admin<{ database: string }>('SHOW CLIENTS')).filter(
        (c) => c.database === tdb.name,
      ).length
    let service: RunningService | undefined
    try {
      service = await startService(
        loadConfig({
          DATABASE_URL: tdb.url,
          DATABASE_URL_POOLED: bouncer.urlFor(tdb.url),
          HOST: '127.0.0.1',
          PORT: '0',
          STRATA_DATA_DIR: dataDir,
          STRATA_ADMIN_TOKEN: ADMIN_TOKEN,
        }),
        logger,
      )
      const created = await fetch(`${service.url}/v1/projects`, {
        method: 'POST',
        headers: { ...bearer(ADMIN_TOKEN), 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'svc' }),
      })
      expect(created.status).toBe(201)
      const { keys } = (await created.json()) as { keys: { write: string } }
      const ingested = await fetch(`${service.url}/v1/logins`, {
        method: 'POST',
        headers: { ...bearer(keys.write), 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'u', method: 'email', success: true }),
      })
      expect(ingested.status).toBe(202)
      expect(await clients()).toBeGreaterThan(0)
      const metrics = await (await fetch(`${service.url}/metrics`)).text()
      expect(metrics).toMatch(/^db_client_connection_max\{[^}]*pool_name="pooled"/m)
      const msgs = lines.map((l) => l.msg ?? '')
      expect(msgs.some((m) => m.includes('PgBouncer at 127.0.0.1'))).toBe(true)
      // No role or database default here: the start-up warning names the fix.
      expect(msgs.some((m) => m.includes('ALTER ROLE'))).toBe(true)
    } finally {
      await service?.stop()
      await tdb.drop()
      await rm(dataDir, { recursive: true, force: true })
    }
    expect(await clients()).toBe(0)
  })
})

describe('DATABASE_URL_POOLED configuration', () => {
  it('needs DATABASE_URL: no PgBouncer sits in front of the embedded PostgreSQL', () => {
    expect(() =>
      loadConfig({ DATABASE_URL_POOLED: 'postgres://strata@pgbouncer:6432/strata' }),
    ).toThrow(/DATABASE_URL_POOLED: needs DATABASE_URL/)
    expect(
      loadConfig({
        DATABASE_URL: 'postgres://strata@postgres:5432/strata',
        DATABASE_URL_POOLED: 'postgres://strata@pgbouncer:6432/strata',
      }).databaseUrlPooled,
    ).toBe('postgres://strata@pgbouncer:6432/strata')
  })
})

// 1,000 concurrent HTTP clients ingest through the service listening on a real socket, its hot
// paths on DATABASE_URL_POOLED through a real PgBouncer (transaction mode, 20 server
// connections): no request fails, and every acknowledged event is stored exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventFor, percentile, postBatch } from '../../../test/support/ingest-load.js'
import { startPgbouncer, type Pgbouncer } from '../../../test/support/pgbouncer.js'
import { pooledFixture, type PooledFixture } from './support/pooled-fixture.js'

const CLIENTS = 1000
const BATCHES_PER_CLIENT = 3
const EVENTS_PER_BATCH = 20
const POOL_SIZE = 20

let bouncer: Pgbouncer
let f: PooledFixture
let url: string

beforeAll(async () => {
  bouncer = await startPgbouncer({ defaultPoolSize: POOL_SIZE, maxClientConn: 2000 })
  // 100 client connections into PgBouncer, multiplexed onto its 20 server connections.
  f = await pooledFixture(
    'pgbload',
    bouncer,
    { performance: { evaluateEveryMs: 0, sampleStatements: false, warmers: {} } },
    'pool_max=100',
  )
  // A backlog for 1,000 simultaneous connects (Node's default is 511).
  url = await f.app.listen({ host: '127.0.0.1', port: 0, backlog: 2048 })
})
afterAll(async () => {
  await f?.close()
  await bouncer?.stop()
})

describe('1,000 ingest clients through PgBouncer', () => {
  it('no errors, and every acknowledged event stored exactly once', async () => {
    const prefix = `L${Date.now().toString(36)}`
    const xacts = async () =>
      Number(
        (await bouncer.admin<{ database: string; total_xact_count: string }>('SHOW STATS')).find(
          (r) => r.database === f.tdb.name,
        )?.total_xact_count ?? 0,
      )
    const xactsBefore = await xacts()
    const flushesBefore = f.services.writer.stats().flushes
    const latencies: number[] = []
    const errors: string[] = []
    let acked = 0
    const started = performance.now()
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        for (let b = 0; b < BATCHES_PER_CLIENT; b++) {
          const events = Array.from({ length: EVENTS_PER_BATCH }, (_, i) =>
            eventFor(`${prefix}-${c}-${b}-${i}`, c * EVENTS_PER_BATCH + i),
          )
          const a = await postBatch(url, f.writeKey, events, 50_000)
          latencies.push(a.end - a.start)
          const body = a.body as { accepted?: number; duplicates?: number } | undefined
          if (a.status === 202 && body?.accepted === EVENTS_PER_BATCH) acked += EVENTS_PER_BATCH
          else errors.push(`${a.status} ${a.code ?? a.error ?? ''} ${a.message ?? ''}`)
        }
      }),
    )
    const seconds = (performance.now() - started) / 1000
    const total = CLIENTS * BATCHES_PER_CLIENT * EVENTS_PER_BATCH
    const figures = {
      clients: CLIENTS,
      requests: latencies.length,
      events: total,
      seconds: Number(seconds.toFixed(2)),
      eventsPerSecond: Math.round(acked / seconds),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: Math.max(...latencies),
      errors: errors.length,
      flushes: f.services.writer.stats().flushes - flushesBefore,
    }
    console.log(`pgbouncer ingest load: ${JSON.stringify(figures)}`)
    expect([...new Set(errors)]).toEqual([])
    expect(acked).toBe(total)
    expect(seconds).toBeLessThan(60)

    // Exactly once: one row per acknowledged messageId across the three event tables.
    const { rows } = await f.db.query<{ ids: number; rows: number; repeated: number }>(
      `SELECT count(*)::int AS ids, coalesce(sum(n), 0)::int AS rows,
              (count(*) FILTER (WHERE n > 1))::int AS repeated
       FROM (SELECT message_id, count(*) AS n FROM (
               SELECT message_id FROM login_events WHERE project_id = $1
               UNION ALL SELECT message_id FROM activity_logs WHERE project_id = $1
               UNION ALL SELECT message_id FROM events WHERE project_id = $1) m
             WHERE message_id LIKE $2 GROUP BY message_id) g`,
      [f.projectId, `${prefix}-%`],
    )
    expect(rows[0]).toEqual({ ids: total, rows: total, repeated: 0 })

    // Every flush was a PgBouncer transaction.
    const flushes = f.services.writer.stats().flushes - flushesBefore
    expect(flushes).toBeGreaterThan(0)
    expect((await xacts()) - xactsBefore).toBeGreaterThanOrEqual(flushes)

    // PgBouncer never opened more than its 20 server connections for this database.
    const pools = await bouncer.admin<{
      database: string
      sv_active: string
      sv_idle: string
      sv_used: string
    }>('SHOW POOLS')
    const pool = pools.find((p) => p.database === f.tdb.name)!
    expect(
      Number(pool.sv_active) + Number(pool.sv_idle) + Number(pool.sv_used),
    ).toBeLessThanOrEqual(POOL_SIZE)
  }, 90_000)
})

import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase, type Database } from '@strata/pg'
import { EventValidator, GroupCommitWriter, ProjectStore, type LoginRow } from '@strata/events'
import { eventsTestDb, type EventsTestDb } from './support/events-db.js'

// Backends of the writer's own pool are terminated at random moments (mid-COPY, mid-statement,
// around COMMIT) while large batches stream in. Whatever happens, every event is stored exactly
// once after the client resends what was refused.
let t: EventsTestDb
let writerDb: Database
let projectId: string
const APP = `strata-chaos-${process.pid}`

beforeAll(async () => {
  t = await eventsTestDb('evchaos')
  projectId = (await new ProjectStore(t.db).createProject('chaos')).project.id
  writerDb = await createDatabase({ url: t.tdb.url, pool: { max: 4 }, applicationName: APP })
})
afterAll(async () => {
  await writerDb?.close()
  await t?.close()
})

describe('connections killed at random points of large flushes', () => {
  it('stores every event exactly once after resending the refused ones', async () => {
    const v = new EventValidator()
    const rows = (batch: number): LoginRow[] =>
      Array.from({ length: 1500 }, (_, i) => {
        const r = v.login(
          {
            messageId: `c-${batch}-${i}`,
            userId: `u${i % 300}`,
            method: 'email',
            success: true,
            sessionId: `s-${batch}-${i}`,
          },
          { projectId, receivedAt: Date.now() },
        )
        if (!r.ok) throw r.error
        return r.row
      })
    const w = new GroupCommitWriter(writerDb, { retryWindow: '2s', unavailableCooldown: '50ms' })
    await w.start()
    const killer = new pg.Client({ connectionString: t.tdb.url })
    await killer.connect()
    let kills = 0
    let stop = false
    const killing = (async () => {
      while (!stop && kills < 12) {
        const res = await killer.query(
          `SELECT pg_terminate_backend(pid) AS k FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'`,
          [APP],
        )
        kills += res.rows.filter((r) => r.k).length
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 100))
      }
    })()
    const batches = Array.from({ length: 16 }, (_, b) => rows(b))
    const refused: LoginRow[][] = []
    // Two clients at a time, so two flushes are usually in flight when a kill lands.
    for (let b = 0; b < batches.length; b += 2) {
      await Promise.all(
        batches.slice(b, b + 2).map(async (batch) => {
          try {
            const res = await w.write(batch)
            for (const r of res)
              expect(r.status === 'inserted' || r.status === 'duplicate').toBe(true)
          } catch (err) {
            expect((err as { code?: string }).code).toBe('STRATA_DB_UNAVAILABLE')
            refused.push(batch)
            await new Promise((r) => setTimeout(r, 60)) // Retry-After, as a client would
          }
        }),
      )
    }
    stop = true
    await killing
    await killer.end()
    await new Promise((r) => setTimeout(r, 100))
    for (const batch of refused) {
      const res = await w.write(batch) // the client's retry
      for (const r of res) expect(r.status === 'inserted' || r.status === 'duplicate').toBe(true)
    }
    await w.close()
    expect(kills).toBeGreaterThan(0)
    const counts = await t.db.query<{ n: number; d: number; s: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT message_id)::int AS d,
              (SELECT count(*)::int FROM user_sessions WHERE project_id = $1) AS s
       FROM login_events WHERE project_id = $1`,
      [projectId],
    )
    // The logins carry session ids, which open no session (sessions need the admin key).
    expect(counts.rows[0]).toEqual({ n: 16 * 1500, d: 16 * 1500, s: 0 })
    const roll = await t.db.query<{ c: string }>(
      `SELECT sum(count) AS c FROM login_rollups_hourly WHERE project_id = $1`,
      [projectId],
    )
    // Rollups are in the same transaction: no double counting from retried flushes.
    expect(Number(roll.rows[0]!.c)).toBe(16 * 1500)
  })
})

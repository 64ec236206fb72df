import { EventValidator, GroupCommitWriter, ProjectStore, type EventRow } from '@strata/events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { countRows, eventsTestDb, type EventsTestDb } from './support/events-db.js'

let t: EventsTestDb
let good: string
let bad: string
const validator = new EventValidator()

beforeAll(async () => {
  t = await eventsTestDb('evwi')
  const store = new ProjectStore(t.db)
  // Rows are written in (project, messageId) order: the good project's first.
  ;[good, bad] = [
    (await store.createProject('one')).project.id,
    (await store.createProject('two')).project.id,
  ].sort() as [string, string]
})
afterAll(async () => {
  await t?.close()
})

function track(projectId: string, messageId: string): EventRow {
  const r = validator.segment(
    { type: 'track', event: 'e', anonymousId: 'a', messageId },
    { projectId, receivedAt: Date.now() },
  )
  if (!r.ok) throw r.error
  return r.row
}

const rows = (projectId: string, prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => track(projectId, `${prefix}-${i}`))

/**
 * A writer whose flush fails as a whole whenever it holds one of `bad`'s rows, the way a
 * statement grown too large by one request's rows does: the error blames no row.
 */
function failingWriter(error: () => Error, copyThreshold?: number): GroupCommitWriter {
  return new GroupCommitWriter(t.db, {
    ...(copyThreshold !== undefined ? { copyThreshold } : {}),
    async beforeCommit(client) {
      const res = await client.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM events WHERE project_id = $1',
        [bad],
      )
      if (res.rows[0]!.n > 0) throw error()
    },
  })
}

describe('GroupCommitWriter: one request cannot fail the others of its flush', () => {
  for (const copyThreshold of [10_000, 1]) {
    const path = copyThreshold === 1 ? 'COPY' : 'single statement'
    it(`a flush-wide error from one project's request fails only that request (${path})`, async () => {
      const w = failingWriter(() => new Error('statement too large'), copyThreshold)
      const tag = `iso-${copyThreshold}`
      // Queued in the same tick: one flush.
      const a = w.write(rows(good, `${tag}-a`, 3))
      const b = w.write(rows(bad, `${tag}-b`, 2))
      const c = w.write(rows(good, `${tag}-c`, 4))
      const [ra, rb, rc] = await Promise.allSettled([a, b, c])
      expect(ra).toMatchObject({ status: 'fulfilled' })
      expect(
        (ra as PromiseFulfilledResult<{ status: string }[]>).value.map((r) => r.status),
      ).toEqual(['inserted', 'inserted', 'inserted'])
      expect(rc).toMatchObject({ status: 'fulfilled' })
      expect(rb).toMatchObject({ status: 'rejected', reason: { code: 'STRATA_INGEST_FAILED' } })
      const stored = await t.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM events WHERE project_id = $1 AND message_id LIKE $2`,
        [good, `${tag}-%`],
      )
      expect(stored.rows[0]!.n).toBe(7)
      expect(await countRows(t.db, 'events', bad)).toBe(0)
      expect(w.stats()).toMatchObject({ failedFlushes: 1, inserted: 7 })
      await w.close()
    })
  }

  it('54000 program_limit_exceeded blames rows: the others of the flush commit', async () => {
    const w = failingWriter(() =>
      Object.assign(new Error('index row size exceeds btree maximum'), { code: '54000' }),
    )
    const a = w.write(rows(good, 'pl-a', 2))
    const b = w.write(rows(bad, 'pl-b', 1))
    const [ra, rb] = await Promise.all([a, b])
    expect(ra.map((r) => r.status)).toEqual(['inserted', 'inserted'])
    expect(rb[0]).toMatchObject({
      status: 'rejected',
      error: { code: 'STRATA_EVENT_REJECTED_BY_DB', details: { sqlState: '54000' } },
    })
    await w.close()
  })

  it('rows committed before a later part failed are reported inserted, not duplicate', async () => {
    // The first flush attempt fails on a data error, bisects (the good half commits), then a
    // flush-wide error on the other half splits by request.
    let calls = 0
    const w = new GroupCommitWriter(t.db, {
      async beforeCommit(client) {
        calls++
        const res = await client.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM events WHERE project_id = $1',
          [bad],
        )
        if (res.rows[0]!.n === 0) return
        throw calls === 1
          ? Object.assign(new Error('bad value'), { code: '22023' })
          : new Error('statement too large')
      },
    })
    const a = w.write(rows(good, 'mix-a', 2))
    const b = w.write(rows(bad, 'mix-b', 2))
    const [ra, rb] = await Promise.allSettled([a, b])
    expect(ra).toMatchObject({ status: 'fulfilled' })
    expect((ra as PromiseFulfilledResult<{ status: string }[]>).value.map((r) => r.status)).toEqual(
      ['inserted', 'inserted'],
    )
    expect(rb).toMatchObject({ status: 'rejected' })
    await w.close()
  })
})

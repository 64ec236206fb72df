import { eventsMigrations } from '@strata/events'
import { createDatabase, migrate } from '@strata/pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'
import { ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

// With DATABASE_READ_URL set, analytics read the replica, not the primary. The "replica" here
// is a second database holding the schema and one marker row, so where the answer came from
// is visible.
let replica: TestDatabase
let f: IngestFixture

beforeAll(async () => {
  replica = await createTestDatabase('anrep')
  const db = await createDatabase({ url: replica.url, pool: { max: 2 } })
  await migrate(db, [eventsMigrations])
  f = await ingestFixture('anrp', undefined, undefined, { databaseReadUrl: replica.url })
  await db.query(`SELECT strata_events_ensure_partition('login_events', '2026-10-01T00:00:00Z')`)
  await db.query(
    `INSERT INTO login_events (project_id, ts, message_id, user_id, method, success, device_type, received_at)
     VALUES ($1, '2026-10-02T00:00:00Z', 'replica-only', 'r1', 'email', true, 'desktop', now())`,
    [f.projectId],
  )
  await db.close()
}, 60_000)

afterAll(async () => {
  await f?.close()
  await replica?.drop()
})

it('recent logins come from DATABASE_READ_URL', async () => {
  const res = await f.app.inject({
    method: 'GET',
    url: '/v1/analytics/recent-logins',
    headers: { authorization: `Bearer ${f.adminKey}` },
  })
  expect(res.statusCode, res.body).toBe(200)
  expect(res.json().items.map((i: { messageId: string }) => i.messageId)).toEqual(['replica-only'])
})

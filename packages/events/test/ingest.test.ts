import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  checkEnvelope,
  EventValidator,
  GroupCommitWriter,
  ingestBatch,
  ingestEventsBatch,
  ingestOne,
  ingestSegmentBatch,
  ingestSegmentMessage,
  ProjectStore,
  type IngestContext,
  type IngestTarget,
} from '@strata/events'
import { countRows, eventsTestDb, type EventsTestDb } from './support/events-db.js'

let t: EventsTestDb
let target: IngestTarget & { writer: GroupCommitWriter }
let ctx: IngestContext

beforeAll(async () => {
  t = await eventsTestDb('evi')
  const projectId = (await new ProjectStore(t.db).createProject('ingest')).project.id
  ctx = { projectId, receivedAt: Date.now() }
  target = {
    validator: new EventValidator({ maxBatchItems: 3, maxSegmentBatchItems: 4 }),
    writer: new GroupCommitWriter(t.db),
  }
  await target.writer.start()
})
afterAll(async () => {
  await target?.writer.close()
  await t?.close()
})

const codeOf = (fn: () => unknown) => {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}

describe('checkEnvelope', () => {
  it('returns an object with an array under the items key', () => {
    const body = { events: [], sentAt: 'x' }
    expect(checkEnvelope(body, 'events')).toBe(body)
  })

  it('refuses a non-object, a missing array and prototype keys', () => {
    expect(codeOf(() => checkEnvelope([], 'events'))).toBe('STRATA_EVENT_INVALID')
    expect(codeOf(() => checkEnvelope(null, 'events'))).toBe('STRATA_EVENT_INVALID')
    expect(codeOf(() => checkEnvelope({ batch: [] }, 'events'))).toBe('STRATA_EVENT_INVALID')
    expect(codeOf(() => checkEnvelope(JSON.parse('{"__proto__":{},"batch":[]}'), 'batch'))).toBe(
      'STRATA_EVENT_FORBIDDEN_KEY',
    )
  })
})

describe('ingestBatch', () => {
  it('counts inserted and duplicate rows, lists rejections in item order', async () => {
    const items = [
      { type: 'activity', messageId: 'b-1', userId: 'u', action: 'view' },
      { type: 'nope', messageId: 'b-2' },
      { type: 'login', messageId: 'b-3', userId: 'u', method: 'email', success: true },
    ]
    const first = await ingestEventsBatch(target, { events: items }, ctx)
    expect(first).toEqual({
      accepted: 2,
      duplicates: 0,
      rejected: [
        {
          index: 1,
          messageId: 'b-2',
          error: { code: 'STRATA_EVENT_UNKNOWN_TYPE', message: expect.any(String) as string },
        },
      ],
    })
    const again = await ingestEventsBatch(target, { events: items }, ctx)
    expect(again).toMatchObject({ accepted: 0, duplicates: 2, rejected: [{ index: 1 }] })
    expect(await countRows(t.db, 'activity_logs', ctx.projectId)).toBe(1)
  })

  it('refuses an empty batch and one above the limit, before writing anything', async () => {
    const validate = (item: unknown) => target.validator.batchItem(item, ctx)
    await expect(ingestBatch(target, [], validate)).rejects.toMatchObject({
      code: 'STRATA_BATCH_EMPTY',
      status: 400,
    })
    await expect(ingestBatch(target, [{}, {}, {}, {}], validate)).rejects.toMatchObject({
      code: 'STRATA_BATCH_TOO_LARGE',
      status: 413,
      details: { limit: 3, received: 4 },
    })
    // An explicit limit wins over the validator's batch limit.
    await expect(ingestBatch(target, [{}, {}], validate, 1)).rejects.toMatchObject({
      code: 'STRATA_BATCH_TOO_LARGE',
    })
  })
})

describe('ingestOne', () => {
  it("returns the messageId once committed, or throws the item's error", async () => {
    const ok = target.validator.activity({ messageId: 'one-1', userId: 'u', action: 'a' }, ctx)
    expect(await ingestOne(target, ok)).toBe('one-1')
    expect(await ingestOne(target, ok)).toBe('one-1') // a duplicate is not an error
    const bad = target.validator.activity({ userId: 'u' }, ctx)
    await expect(ingestOne(target, bad)).rejects.toMatchObject({ status: 400 })
  })
})

describe('Segment envelopes', () => {
  const contextOf = async (messageId: string) =>
    (
      await t.db.query<{ context: unknown; type: string }>(
        'SELECT context, type FROM events WHERE message_id = $1',
        [messageId],
      )
    ).rows[0]

  it('applies the batch-level context to messages that carry none', async () => {
    const answer = await ingestSegmentBatch(
      target,
      {
        context: { library: { name: 'shared' } },
        batch: [
          { type: 'track', event: 'A', userId: 'u', messageId: 'sg-1' },
          { type: 'track', event: 'B', userId: 'u', messageId: 'sg-2', context: { own: true } },
        ],
      },
      ctx,
    )
    expect(answer).toEqual({ accepted: 2, duplicates: 0, rejected: [] })
    expect((await contextOf('sg-1'))?.context).toEqual({ library: { name: 'shared' } })
    expect((await contextOf('sg-2'))?.context).toEqual({ own: true })
  })

  it("uses the validator's Segment batch limit", async () => {
    const batch = Array.from({ length: 5 }, (_, i) => ({ type: 'track', event: `e${i}` }))
    await expect(ingestSegmentBatch(target, { batch }, ctx)).rejects.toMatchObject({
      code: 'STRATA_BATCH_TOO_LARGE',
      details: { limit: 4 },
    })
  })

  it('a single message takes the type its route names', async () => {
    const id = await ingestSegmentMessage(
      target,
      'identify',
      { type: 'track', userId: 'u', messageId: 'sg-3', traits: { plan: 'pro' } },
      ctx,
    )
    expect(id).toBe('sg-3')
    expect((await contextOf('sg-3'))?.type).toBe('identify')
    await expect(ingestSegmentMessage(target, 'track', [1], ctx)).rejects.toMatchObject({
      code: 'STRATA_EVENT_INVALID',
    })
  })
})

import { EventValidator, type EventRow, type IngestTarget } from '@strata/events'
import { describe, expect, it } from 'vitest'
import {
  expandedBatchBytes,
  ingestSegmentBatch,
  SEGMENT_MAX_EXPANDED_BYTES,
} from '../src/ingest/segment.js'

const ctx = { projectId: '00000000-0000-4000-8000-000000000001', receivedAt: Date.now() }

/** A target whose writer only counts what it is handed. */
function target(): IngestTarget & { written: EventRow[] } {
  const written: EventRow[] = []
  return {
    written,
    validator: new EventValidator(),
    writer: {
      write(rows: EventRow[]) {
        written.push(...rows)
        return Promise.resolve(rows.map(() => ({ status: 'inserted' as const })))
      },
    },
  }
}

const tiny = (i: number) => ({ type: 'track', event: 'e', anonymousId: 'a', messageId: `m${i}` })

describe('Segment batch expansion', () => {
  it('counts the shared context once per message that inherits it, plus each message', () => {
    const shared = { library: { name: 'x'.repeat(1000) } }
    const items = [tiny(0), tiny(1), { ...tiny(2), context: { own: true } }]
    const each = items.map((i) => Buffer.byteLength(JSON.stringify(i)))
    const sharedBytes = Buffer.byteLength(JSON.stringify(shared)) + ',"context":'.length
    expect(expandedBatchBytes(items, shared)).toBe(
      each.reduce((a, b) => a + b, 0) + 2 * sharedBytes,
    )
    expect(expandedBatchBytes(items, undefined)).toBe(each.reduce((a, b) => a + b, 0))
  })

  it('refuses a small body that asks for gigabytes (413) before validating or writing', async () => {
    const t = target()
    // ~2 KB gzipped: a 400 KB context of one repeated character, 5,000 tiny messages.
    const envelope = {
      context: { pad: 'x'.repeat(400_000) },
      batch: Array.from({ length: 5000 }, (_, i) => tiny(i)),
    }
    let validated = 0
    const segment = t.validator.segment.bind(t.validator)
    t.validator.segment = (...args) => {
      validated++
      return segment(...args)
    }
    await expect(ingestSegmentBatch(t, envelope, ctx)).rejects.toMatchObject({
      code: 'STRATA_BATCH_TOO_LARGE',
      status: 413,
      details: { limit: SEGMENT_MAX_EXPANDED_BYTES, reason: 'expanded-context' },
    })
    expect(t.written).toHaveLength(0)
    // Refused from the copies' size alone, before any message is merged or validated.
    expect(validated).toBe(0)
  })

  it('counts the messages themselves too, and takes a lower bound', async () => {
    const t = target()
    const envelope = {
      context: { ip: '203.0.113.9' },
      batch: [{ ...tiny(0), properties: { blob: 'y'.repeat(5000) } }, tiny(1)],
    }
    await expect(
      ingestSegmentBatch(t, envelope, ctx, { maxExpandedBytes: 4000 }),
    ).rejects.toMatchObject({ code: 'STRATA_BATCH_TOO_LARGE' })
    expect(await ingestSegmentBatch(t, envelope, ctx)).toEqual({
      accepted: 2,
      duplicates: 0,
      rejected: [],
    })
    expect(t.written.map((r) => (r as { context: unknown }).context)).toEqual([
      { ip: '203.0.113.9' },
      { ip: '203.0.113.9' },
    ])
  })

  it('a batch whose messages carry their own context copies nothing and is not refused', async () => {
    const t = target()
    const envelope = {
      context: { pad: 'x'.repeat(400_000) },
      batch: Array.from({ length: 5000 }, (_, i) => ({ ...tiny(i), context: {} })),
    }
    expect(await ingestSegmentBatch(t, envelope, ctx)).toMatchObject({ accepted: 5000 })
  })
})

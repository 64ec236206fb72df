import { isObject, type StrataError } from '@strata/core'
import { eventsErrors } from '../errors.js'
import type { EventRow } from '../types.js'
import type {
  EventValidator,
  IngestContext,
  ValidationResult,
} from '../validation/event-validator.js'
import type { RowResult } from '../writer/group-commit-writer.js'

/** What ingestion needs: a validator and something that writes rows (a GroupCommitWriter). */
export interface IngestTarget {
  validator: EventValidator
  writer: { write(rows: EventRow[]): Promise<RowResult[]> }
}

/** Per-batch outcome: counts, and each rejected item with its index and error. */
export interface BatchAnswer {
  accepted: number
  duplicates: number
  rejected: { index: number; messageId: string | null; error: { code: string; message: string } }[]
}

/**
 * Checks a batch envelope: a JSON object with no prototype-polluting keys (items are checked
 * one by one later) and an array under `itemsKey`. Returns the envelope; throws a 400 otherwise.
 */
export function checkEnvelope(body: unknown, itemsKey: string): Record<string, unknown> {
  if (!isObject(body))
    throw eventsErrors.create('STRATA_EVENT_INVALID', { message: 'Body must be a JSON object' })
  for (const k of Object.keys(body)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype')
      throw eventsErrors.create('STRATA_EVENT_FORBIDDEN_KEY', {
        message: `Body key ${k} is not accepted`,
      })
  }
  if (!Array.isArray(body[itemsKey]))
    throw eventsErrors.create('STRATA_EVENT_INVALID', {
      message: `Body must have an array "${itemsKey}"`,
    })
  return body
}

/**
 * Validates items one by one, writes the valid ones in one group-commit write, and reports
 * per item (rejections sorted by index). Waits for COMMIT; writer refusals (503) are thrown.
 */
export async function ingestBatch(
  target: IngestTarget,
  items: unknown[],
  validate: (item: unknown) => ValidationResult,
  max = target.validator.limits.maxBatchItems,
): Promise<BatchAnswer> {
  if (items.length === 0) throw eventsErrors.create('STRATA_BATCH_EMPTY')
  if (items.length > max)
    throw eventsErrors.create('STRATA_BATCH_TOO_LARGE', {
      message: `Batch has ${items.length} events; the limit is ${max}`,
      details: { limit: max, received: items.length },
    })
  const answer: BatchAnswer = { accepted: 0, duplicates: 0, rejected: [] }
  const rows: EventRow[] = []
  const indexes: number[] = []
  items.forEach((item, index) => {
    const r = validate(item)
    if (r.ok) {
      rows.push(r.row)
      indexes.push(index)
    } else answer.rejected.push({ index, messageId: r.messageId, error: brief(r.error) })
  })
  const results = await target.writer.write(rows)
  results.forEach((r, i) => {
    if (r.status === 'inserted') answer.accepted++
    else if (r.status === 'duplicate') answer.duplicates++
    else
      answer.rejected.push({
        index: indexes[i]!,
        messageId: rows[i]!.messageId,
        error: brief(r.error),
      })
  })
  answer.rejected.sort((a, b) => a.index - b.index)
  return answer
}

/** `POST /v1/events/batch`: an `events` envelope whose items dispatch on their `type`. */
export function ingestEventsBatch(
  target: IngestTarget,
  envelope: Record<string, unknown>,
  ctx: IngestContext,
): Promise<BatchAnswer> {
  return ingestBatch(target, envelope.events as unknown[], (item) =>
    target.validator.batchItem(item, ctx),
  )
}

/** One event: throws the item's error (400) or returns its messageId once committed. */
export async function ingestOne(target: IngestTarget, result: ValidationResult): Promise<string> {
  if (!result.ok) throw result.error
  const [r] = await target.writer.write([result.row])
  if (r?.status === 'rejected') throw r.error
  return result.row.messageId
}

function brief(e: StrataError): { code: string; message: string } {
  return { code: e.code, message: e.message }
}

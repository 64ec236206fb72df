import { isObject } from '@strata/core'
import { eventsErrors } from '../errors.js'
import type { SegmentType } from '../types.js'
import type { IngestContext } from '../validation/event-validator.js'
import { ingestBatch, ingestOne, type BatchAnswer, type IngestTarget } from './batch.js'

/**
 * Bytes of JSON a Segment batch may expand to once its batch-level `context` is copied into
 * each message that has none: 4 × the server's 500 KB body limit. Without it a ~2 KB gzip
 * body (a large, compressible context and 5,000 tiny messages) asks for gigabytes of rows.
 */
export const SEGMENT_MAX_EXPANDED_BYTES = 2_048_000

export interface SegmentBatchOptions {
  /** @defaultValue SEGMENT_MAX_EXPANDED_BYTES */
  maxExpandedBytes?: number
}

// `,"context":` added to each message that inherits the shared context.
const CONTEXT_KEY_BYTES = 11

function jsonBytes(value: unknown): number {
  const s = JSON.stringify(value) as string | undefined
  return s === undefined ? 0 : Buffer.byteLength(s)
}

/**
 * The bytes of JSON the messages of `items` add up to once each one without a `context` has
 * `shared` merged in; stops counting once past `max` (it then returns more than `max`).
 */
export function expandedBatchBytes(
  items: readonly unknown[],
  shared: Record<string, unknown> | undefined,
  max = Number.POSITIVE_INFINITY,
): number {
  let inheritors = 0
  if (shared)
    for (const item of items) if (isObject(item) && item.context === undefined) inheritors++
  // The copies first: past the bound, the messages themselves need no measuring.
  let total = inheritors ? inheritors * (jsonBytes(shared) + CONTEXT_KEY_BYTES) : 0
  for (let i = 0; i < items.length && total <= max; i++) total += jsonBytes(items[i])
  return total
}

/**
 * Segment's `/v1/batch`: a checked envelope (see checkEnvelope) with a `batch` array. A
 * batch-level `context` applies to the messages that carry none, as in Segment's HTTP API; a
 * batch that would expand past `maxExpandedBytes` that way is refused whole (413
 * STRATA_BATCH_TOO_LARGE) before any message is validated.
 */
export function ingestSegmentBatch(
  target: IngestTarget,
  envelope: Record<string, unknown>,
  ctx: IngestContext,
  options: SegmentBatchOptions = {},
): Promise<BatchAnswer> {
  const shared = isObject(envelope.context) ? envelope.context : undefined
  const items = envelope.batch as unknown[]
  if (shared) {
    const max = options.maxExpandedBytes ?? SEGMENT_MAX_EXPANDED_BYTES
    const expanded = expandedBatchBytes(items, shared, max)
    if (expanded > max)
      return Promise.reject(
        eventsErrors.create('STRATA_BATCH_TOO_LARGE', {
          message: `Batch would exceed ${max} bytes once its batch-level context is copied into each message without one; send smaller batches or a per-message context`,
          details: { limit: max, reason: 'expanded-context' },
        }),
      )
  }
  return ingestBatch(
    target,
    items,
    (item) =>
      target.validator.segment(
        shared && isObject(item) && item.context === undefined
          ? { ...item, context: shared }
          : item,
        ctx,
      ),
    target.validator.limits.maxSegmentBatchItems,
  )
}

/**
 * Segment's single-message routes (`/v1/track`, `/v1/identify`, ...): the route names the
 * type, whatever the body says. Returns the messageId once committed.
 */
export function ingestSegmentMessage(
  target: IngestTarget,
  type: SegmentType,
  body: unknown,
  ctx: IngestContext,
): Promise<string> {
  return ingestOne(target, target.validator.segment(isObject(body) ? { ...body, type } : body, ctx))
}

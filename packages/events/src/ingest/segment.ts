import { isObject } from '@strata/core'
import type { SegmentType } from '../types.js'
import type { IngestContext } from '../validation/event-validator.js'
import { ingestBatch, ingestOne, type BatchAnswer, type IngestTarget } from './batch.js'

/**
 * Segment's `/v1/batch`: a checked envelope (see checkEnvelope) with a `batch` array. A
 * batch-level `context` applies to the messages that carry none, as in Segment's HTTP API.
 */
export function ingestSegmentBatch(
  target: IngestTarget,
  envelope: Record<string, unknown>,
  ctx: IngestContext,
): Promise<BatchAnswer> {
  const shared = isObject(envelope.context) ? envelope.context : undefined
  return ingestBatch(
    target,
    envelope.batch as unknown[],
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

import { parseDuration, type Duration } from '@strata/core'

export interface IngestLimits {
  /** Events per batch request. @defaultValue 100 */
  maxBatchItems: number
  /** Nesting depth of an event's JSON (the event object is depth 1). @defaultValue 32 */
  maxDepth: number
  /** How far ahead of receive time a (corrected) timestamp may be. @defaultValue '24h' */
  maxFuture: Duration
  /** How far back a timestamp may be (the retention window). @defaultValue '730d' */
  maxPast: Duration
}

export const DEFAULT_INGEST_LIMITS: IngestLimits = Object.freeze({
  maxBatchItems: 100,
  maxDepth: 32,
  maxFuture: '24h',
  maxPast: '730d',
})

export interface ResolvedIngestLimits {
  maxBatchItems: number
  maxDepth: number
  maxFutureMs: number
  maxPastMs: number
}

export function resolveIngestLimits(options: Partial<IngestLimits> = {}): ResolvedIngestLimits {
  const o = { ...DEFAULT_INGEST_LIMITS, ...options }
  return Object.freeze({
    maxBatchItems: o.maxBatchItems,
    maxDepth: o.maxDepth,
    maxFutureMs: parseDuration(o.maxFuture, 'maxFuture'),
    maxPastMs: parseDuration(o.maxPast, 'maxPast'),
  })
}

import { parseDuration, type Duration } from '@strata/core'

export interface IngestLimits {
  /** Events per batch request (`POST /v1/events/batch`). @defaultValue 100 */
  maxBatchItems: number
  /**
   * Messages per Segment `/v1/batch`. Segment limits batches by size (500 KB), not count, and
   * SDKs drop a batch answered 413, so this is only a backstop. @defaultValue 5000
   */
  maxSegmentBatchItems: number
  /** Nesting depth of an event's JSON (the event object is depth 1). @defaultValue 32 */
  maxDepth: number
  /** How far ahead of receive time a (corrected) timestamp may be. @defaultValue '24h' */
  maxFuture: Duration
  /** How far back a timestamp may be (the retention window). @defaultValue '730d' */
  maxPast: Duration
}

export const DEFAULT_INGEST_LIMITS: IngestLimits = Object.freeze({
  maxBatchItems: 100,
  maxSegmentBatchItems: 5000,
  maxDepth: 32,
  maxFuture: '24h',
  maxPast: '730d',
})

export interface ResolvedIngestLimits {
  maxBatchItems: number
  maxSegmentBatchItems: number
  maxDepth: number
  maxFutureMs: number
  maxPastMs: number
}

export function resolveIngestLimits(options: Partial<IngestLimits> = {}): ResolvedIngestLimits {
  const o = { ...DEFAULT_INGEST_LIMITS, ...options }
  return Object.freeze({
    maxBatchItems: o.maxBatchItems,
    maxSegmentBatchItems: o.maxSegmentBatchItems,
    maxDepth: o.maxDepth,
    maxFutureMs: parseDuration(o.maxFuture, 'maxFuture'),
    maxPastMs: parseDuration(o.maxPast, 'maxPast'),
  })
}

/** GroupCommitWriter defaults (see GroupCommitWriterOptions for what each means). */
export const WRITER_DEFAULTS = Object.freeze({
  maxBatchRows: 5000, // rows per flush transaction
  flushInterval: '2ms', // gather time while another flush runs
  maxConcurrentFlushes: 2,
  maxQueueRows: 50_000, // then 503 STRATA_INGEST_OVERLOADED
  retryWindow: '3s',
  unavailableCooldown: '1s',
  partitionsAhead: 2,
  copyThreshold: 500, // rows; above: COPY path
  retention: '730d',
})

/** SessionStore defaults. */
export const SESSION_DEFAULTS = Object.freeze({
  ttl: '7d',
  cacheTtl: '5s', // bounds a logout's staleness on other instances without a cache bus
  touchInterval: '30s', // at most one UPDATE per session per interval
  retention: '1d', // ended/expired sessions are deleted this long after
  cleanupInterval: '10m',
})

/** ProjectStore defaults. */
export const PROJECT_STORE_DEFAULTS = Object.freeze({
  keyCacheTtl: '1s', // revocation reaches every instance within this
  keyCacheMaxEntries: 10_000,
})

/** Importer defaults, in one place (units in the names or comments). */
export const importDefaults = Object.freeze({
  batch: Object.freeze({
    initial: 1000,
    min: 100,
    max: 10_000,
    targetMs: 5000,
    /** Characters of source text per batch at most (memory bound for wide rows). */
    maxBytes: 1024 * 1024,
  }),
  errors: Object.freeze({ maxErrorRate: 0.1 }),
  /** Chunks of a chunked (BullMQ) import when `workers` is not given. */
  workers: 1,
  /** Progress events interval. */
  progressIntervalMs: 2000,
  /** Intake pauses while the process RSS is above this. */
  memoryLimitBytes: 1024 * 1024 * 1024,
  /** Transient database errors: attempts per batch and backoff base/cap. */
  retry: Object.freeze({ attempts: 5, baseMs: 100, maxMs: 5000 }),
  /** Foreign-key lookup cache entries per lookup column. */
  lookupCacheEntries: 100_000,
  /** NDJSON: a longer line is rejected (and skipped) instead of buffered. */
  maxLineBytes: 16 * 1024 * 1024,
  /** Rows fetched per round trip from a Postgres cursor source. */
  cursorFetchRows: 5000,
  /** Parse/convert CSV and NDJSON in a worker thread (see bench: import). */
  parseWorker: false,
  /** Uploads through the API larger than this are refused. */
  maxUploadBytes: 1024 * 1024 * 1024,
})

import { randomUUID } from 'node:crypto'
import type { Queryable } from '@strata/pg'
import { importErrors } from './errors.js'
import type { Reject } from './reject-file.js'
import type { ResolvedSpec } from './spec.js'

export type JobStatus = 'queued' | 'running' | 'paused' | 'failed' | 'cancelled' | 'completed'

/** A chunk's share of a file: the byte range it owns and where its lines start. */
export interface ChunkInfo {
  start: number
  end: number
  firstLine: number
  header?: string[]
}

/** One row of data_import_jobs, camelCased. */
export interface ImportJob {
  id: string
  parentId: string | null
  chunkIndex: number | null
  status: JobStatus
  requested: 'pause' | 'cancel' | null
  reason: string | null
  /**
   * False when the job cannot usefully be resumed: it ended (completed, cancelled) or failed on an
   * error of its spec (a field the header lacks, a changed source), which a resume repeats.
   */
  resumable: boolean
  spec: unknown
  baseDir: string | null
  sourceFingerprint: string | null
  chunk: ChunkInfo | null
  /** The source's header row (CSV field names), once a run has opened the source. */
  sourceHeader: string[] | null
  checkpoint: { records: number; line: number }
  counts: { read: number; loaded: number; rejected: number; skipped: number }
  batches: number
  batchSize: number | null
  totalBytes: number | null
  bytesRead: number | null
  throughputRps: number | null
  errorRate: number
  runs: number
  elapsedMs: number
  createdAt: Date
  startedAt: Date | null
  updatedAt: Date
  finishedAt: Date | null
}

interface JobRow {
  id: string
  parent_id: string | null
  chunk_index: number | null
  status: JobStatus
  requested: 'pause' | 'cancel' | null
  reason: string | null
  spec: unknown
  base_dir: string | null
  source_fingerprint: string | null
  chunk: ChunkInfo | null
  source_header: string[] | null
  checkpoint_records: string
  checkpoint_line: string
  rows_read: string
  rows_loaded: string
  rows_rejected: string
  rows_skipped: string
  batches: string
  batch_size: number | null
  total_bytes: string | null
  bytes_read: string | null
  throughput_rps: number | null
  error_rate: number
  runs: number
  elapsed_ms: string
  created_at: Date
  started_at: Date | null
  updated_at: Date
  finished_at: Date | null
}

const num = (v: string | null): number | null => (v === null ? null : Number(v))

/**
 * Failures caused by the spec or the job itself: a resume runs the same spec on the same source
 * and fails the same way. Everything else (the database, a missing file put back, a crash) may
 * pass on a resume.
 */
const SPEC_FAILURES: ReadonlySet<string> = new Set([
  'STRATA_IMPORT_INVALID_SPEC',
  'STRATA_IMPORT_UNKNOWN_TABLE',
  'STRATA_IMPORT_UNKNOWN_COLUMN',
  'STRATA_IMPORT_NO_UNIQUE_KEY',
  'STRATA_IMPORT_PATH_NOT_ALLOWED',
  'STRATA_IMPORT_SOURCE_CHANGED',
  'STRATA_IMPORT_JOB_NOT_RESUMABLE',
])

/** The error code a failed run recorded at the start of its reason (`STRATA_…: message`). */
export function failureCode(reason: string | null): string | null {
  return /^(STRATA_[A-Z0-9_]+): /.exec(reason ?? '')?.[1] ?? null
}

/** Whether a job in `status` that stopped for `reason` can be resumed (see ImportJob.resumable). */
export function isResumable(status: JobStatus, reason: string | null): boolean {
  if (status === 'completed' || status === 'cancelled') return false
  if (status !== 'failed') return true
  const code = failureCode(reason)
  return code === null || !SPEC_FAILURES.has(code)
}

function toJob(r: JobRow): ImportJob {
  return {
    id: r.id,
    parentId: r.parent_id,
    chunkIndex: r.chunk_index,
    status: r.status,
    requested: r.requested,
    reason: r.reason,
    resumable: isResumable(r.status, r.reason),
    spec: r.spec,
    baseDir: r.base_dir,
    sourceFingerprint: r.source_fingerprint,
    chunk: r.chunk,
    sourceHeader: r.source_header ?? null,
    checkpoint: { records: Number(r.checkpoint_records), line: Number(r.checkpoint_line) },
    counts: {
      read: Number(r.rows_read),
      loaded: Number(r.rows_loaded),
      rejected: Number(r.rows_rejected),
      skipped: Number(r.rows_skipped),
    },
    batches: Number(r.batches),
    batchSize: r.batch_size,
    totalBytes: num(r.total_bytes),
    bytesRead: num(r.bytes_read),
    throughputRps: r.throughput_rps,
    errorRate: r.error_rate,
    runs: r.runs,
    elapsedMs: Number(r.elapsed_ms),
    createdAt: r.created_at,
    startedAt: r.started_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  }
}

export interface NewJob {
  spec: unknown
  baseDir?: string
  fingerprint?: string
  totalBytes?: number
  parentId?: string
  chunkIndex?: number
  chunk?: ChunkInfo
  status?: JobStatus
}

/**
 * The URL with its password (user info, or a `password`/`sslpassword` parameter) replaced by
 * `***`: what a stored spec, an API answer or a log line shows of a postgres source.
 */
export function redactSourceUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    for (const k of ['password', 'sslpassword'])
      if (u.searchParams.has(k)) u.searchParams.set(k, '***')
    return u.toString()
  } catch {
    // Not a URL: hide everything between the scheme and the last @ of the authority.
    return url.replace(/^([^:]*:\/\/)[^/?#]*@/, '$1***@')
  }
}

/** The spec with a postgres source URL's password redacted, and the real URL when it differed. */
function splitSourceSecret(spec: unknown): { shown: unknown; url: string | null } {
  const source = (spec as { source?: { format?: unknown; url?: unknown } } | null)?.source
  if (source?.format !== 'postgres' || typeof source.url !== 'string')
    return { shown: spec, url: null }
  const redacted = redactSourceUrl(source.url)
  if (redacted === source.url) return { shown: spec, url: null }
  return {
    shown: { ...(spec as object), source: { ...source, url: redacted } },
    url: source.url,
  }
}

/**
 * Puts the real source URL back into a spec read from a job (whose stored spec shows it
 * redacted): from the job's source_url column, which no list or get function returns. Leaves a
 * spec whose URL is not that redacted form alone (a caller that passed the spec again).
 */
export async function restoreSourceUrl(
  db: Queryable,
  id: string,
  spec: ResolvedSpec,
): Promise<void> {
  const source = spec.source
  if (source.format !== 'postgres' || !source.url) return
  const res = await db.query<{ source_url: string | null }>(
    'SELECT source_url FROM data_import_jobs WHERE id = $1',
    [id],
    { label: 'importer.jobs' },
  )
  const url = res.rows[0]?.source_url
  if (url && redactSourceUrl(url) === source.url) source.url = url
}

/** Records the source's header row (first run that opens the source; the same on resume). */
export async function setSourceHeader(db: Queryable, id: string, header: string[]): Promise<void> {
  await db.query(
    'UPDATE data_import_jobs SET source_header = $2 WHERE id = $1 AND source_header IS NULL',
    [id, JSON.stringify(header)],
  )
}

/** Stores a job; a postgres source's password goes to source_url only, never into `spec`. */
export async function insertJob(db: Queryable, job: NewJob): Promise<string> {
  const { shown, url } = splitSourceSecret(job.spec)
  const res = await db.query<{ id: string }>(
    `INSERT INTO data_import_jobs (spec, base_dir, source_fingerprint, total_bytes, parent_id, chunk_index, chunk, status, source_url)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
    [
      JSON.stringify(shown),
      job.baseDir ?? null,
      job.fingerprint ?? null,
      job.totalBytes ?? null,
      job.parentId ?? null,
      job.chunkIndex ?? null,
      job.chunk ? JSON.stringify(job.chunk) : null,
      job.status ?? 'queued',
      url,
    ],
    { label: 'importer.jobs' },
  )
  return res.rows[0]!.id
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The job, or STRATA_IMPORT_JOB_NOT_FOUND. */
export async function getImportJob(db: Queryable, id: string): Promise<ImportJob> {
  if (!UUID.test(id))
    throw importErrors.create('STRATA_IMPORT_JOB_NOT_FOUND', { message: `No import job ${id}` })
  const res = await db.query<JobRow>('SELECT * FROM data_import_jobs WHERE id = $1', [id], {
    label: 'importer.jobs',
  })
  if (res.rows.length === 0)
    throw importErrors.create('STRATA_IMPORT_JOB_NOT_FOUND', { message: `No import job ${id}` })
  return toJob(res.rows[0]!)
}

/** Keyset position in the newest-first job list: the last job's created_at (µs text) and id. */
export interface JobListCursor {
  createdAt: string
  id: string
}

export interface ListJobsOptions {
  /** Page size (1-200; clamped). @defaultValue 50 */
  limit?: number
  /** Jobs created before this position (the previous page's `next`). */
  after?: JobListCursor | null
  /** Only jobs in these statuses. */
  status?: JobStatus[]
}

/**
 * Top-level import jobs (chunks of a parallel import are left out: their parent carries the
 * totals), newest first, one keyset page at a time. `next` is null on the last page.
 */
export async function listJobs(
  db: Queryable,
  options: ListJobsOptions = {},
): Promise<{ items: ImportJob[]; next: JobListCursor | null }> {
  const limit = Math.min(200, Math.max(1, Math.floor(options.limit ?? 50)))
  const after = options.after ?? null
  if (after && !UUID.test(after.id)) return { items: [], next: null }
  const res = await db.query<JobRow & { created_key: string }>(
    `SELECT *, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_key
       FROM data_import_jobs
      WHERE parent_id IS NULL
        AND ($1::timestamptz IS NULL OR (created_at, id) < ($1::timestamptz, $2::uuid))
        AND ($3::text[] IS NULL OR status = ANY($3::text[]))
      ORDER BY created_at DESC, id DESC
      LIMIT $4`,
    [after?.createdAt ?? null, after?.id ?? null, options.status ?? null, limit + 1],
    { label: 'importer.jobs' },
  )
  const rows = res.rows.slice(0, limit)
  const last = rows[rows.length - 1]
  return {
    items: rows.map(toJob),
    next: res.rows.length > limit && last ? { createdAt: last.created_key, id: last.id } : null,
  }
}

export async function listChildJobs(db: Queryable, parentId: string): Promise<ImportJob[]> {
  const res = await db.query<JobRow>(
    'SELECT * FROM data_import_jobs WHERE parent_id = $1 ORDER BY chunk_index',
    [parentId],
    { label: 'importer.jobs' },
  )
  return res.rows.map(toJob)
}

/** How long a run's lease lasts (ms); its runner renews it every third of that. */
export const DEFAULT_LEASE_MS = 15_000

export interface ClaimOptions {
  /** Length of the lease taken with the claim (ms). @defaultValue DEFAULT_LEASE_MS */
  leaseMs?: number
  /**
   * Only a 'running' job whose lease has passed (its runner died): the claim of another
   * instance's scan. The check and the update are one statement, so when several instances
   * race for the job exactly one gets it.
   */
  expiredOnly?: boolean
}

/**
 * Takes ownership of a job for one run: a fresh fencing token, status running, a lease. A
 * runner that was killed (status still 'running') is taken over; its token no longer matches,
 * so should it still be alive, its next checkpoint fails and its transaction rolls back.
 */
export async function claimJob(
  db: Queryable,
  id: string,
  allowed: JobStatus[],
  options: ClaimOptions = {},
): Promise<{ token: string; job: ImportJob }> {
  const token = randomUUID()
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS
  // A job without a lease (a runner from before leases) counts as expired one lease after
  // it last moved.
  const res = await db.query<JobRow>(
    `UPDATE data_import_jobs
        SET status = 'running', run_token = $2, requested = NULL, reason = NULL, runs = runs + 1,
            started_at = coalesce(started_at, now()), updated_at = now(), finished_at = NULL,
            lease_until = now() + make_interval(secs => $4::float8 / 1000)
      WHERE id = $1 AND status = ANY($3::text[])
        AND (NOT $5::boolean OR (status = 'running'
             AND coalesce(lease_until, updated_at + make_interval(secs => $4::float8 / 1000)) < now()))
      RETURNING *`,
    [id, token, options.expiredOnly ? ['running'] : allowed, leaseMs, options.expiredOnly ?? false],
    { label: 'importer.jobs' },
  )
  if (res.rows.length === 0) {
    const job = await getImportJob(db, id)
    throw importErrors.create('STRATA_IMPORT_JOB_NOT_RESUMABLE', {
      message: `Import job ${id} is ${job.status} and cannot be (re)started`,
      details: { status: job.status },
    })
  }
  return { token, job: toJob(res.rows[0]!) }
}

/**
 * Pushes the run's lease `leaseMs` past now. False when the run no longer owns the job (taken
 * over, ended or deleted).
 */
export async function renewLease(
  db: Queryable,
  id: string,
  token: string,
  leaseMs = DEFAULT_LEASE_MS,
): Promise<boolean> {
  const res = await db.query(
    `UPDATE data_import_jobs SET lease_until = now() + make_interval(secs => $3::float8 / 1000)
      WHERE id = $1 AND run_token = $2 AND status = 'running'`,
    [id, token, leaseMs],
    { label: 'importer.lease' },
  )
  return (res.rowCount ?? 0) > 0
}

export interface CheckpointDelta {
  records: number
  line: number
  read: number
  loaded: number
  rejected: number
  skipped: number
  batchSize: number
  bytesRead: number | null
  throughputRps: number
  elapsedMs: number
}

/**
 * Advances the checkpoint and counts; runs inside the batch's transaction. Returns the pending
 * pause/cancel request. Throws STRATA_IMPORT_JOB_TAKEN_OVER when the token is stale.
 */
export async function advanceCheckpoint(
  tx: Queryable,
  id: string,
  token: string,
  d: CheckpointDelta,
): Promise<'pause' | 'cancel' | null> {
  const res = await tx.query<{ requested: 'pause' | 'cancel' | null }>(
    `UPDATE data_import_jobs
        SET checkpoint_records = checkpoint_records + $3, checkpoint_line = $4,
            rows_read = rows_read + $5, rows_loaded = rows_loaded + $6,
            rows_rejected = rows_rejected + $7, rows_skipped = rows_skipped + $8,
            error_rate = CASE WHEN rows_read + $5 > 0 THEN (rows_rejected + $7)::float8 / (rows_read + $5) ELSE 0 END,
            batches = batches + 1, batch_size = $9, bytes_read = $10, throughput_rps = $11,
            elapsed_ms = elapsed_ms + $12, updated_at = now()
      WHERE id = $1 AND run_token = $2
      RETURNING requested`,
    [
      id,
      token,
      d.records,
      d.line,
      d.read,
      d.loaded,
      d.rejected,
      d.skipped,
      d.batchSize,
      d.bytesRead,
      d.throughputRps,
      Math.round(d.elapsedMs),
    ],
    { label: 'importer.checkpoint' },
  )
  if (res.rows.length === 0)
    throw importErrors.create('STRATA_IMPORT_JOB_TAKEN_OVER', {
      message: `Import job ${id} was taken over by another runner (or deleted); this runner stopped`,
    })
  return res.rows[0]!.requested
}

export async function insertRejects(tx: Queryable, id: string, rejects: Reject[]): Promise<void> {
  if (rejects.length === 0) return
  await tx.query(
    `INSERT INTO data_migration_logs (job_id, level, line, column_name, code, message, fields)
     SELECT $1, 'reject', r.line, r.col, r.code, r.message, r.fields
       FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::jsonb[]) AS r(line, col, code, message, fields)`,
    [
      id,
      rejects.map((r) => r.line),
      rejects.map((r) => r.column),
      rejects.map((r) => r.code),
      rejects.map((r) => r.message),
      rejects.map((r) => JSON.stringify(r.fields)),
    ],
    { label: 'importer.rejects' },
  )
}

/** Rejected rows of a job (and of its chunks), in line order. */
export async function listRejects(
  db: Queryable,
  id: string,
  options: { limit?: number; afterLine?: number } = {},
): Promise<Reject[]> {
  const res = await db.query<{
    line: string
    column_name: string | null
    code: string
    message: string
    fields: string[] | null
  }>(
    `SELECT line, column_name, code, message, fields FROM data_migration_logs
      WHERE level = 'reject' AND (job_id = $1 OR job_id IN (SELECT id FROM data_import_jobs WHERE parent_id = $1))
        AND line > $2
      ORDER BY line, id LIMIT $3`,
    [id, options.afterLine ?? -1, options.limit ?? 1_000_000_000],
    { label: 'importer.rejects' },
  )
  return res.rows.map((r) => ({
    line: Number(r.line),
    column: r.column_name,
    code: r.code,
    message: r.message,
    fields: Array.isArray(r.fields)
      ? r.fields.map((f) => (typeof f === 'string' ? f : JSON.stringify(f)))
      : [],
  }))
}

export async function logEvent(
  db: Queryable,
  id: string,
  level: 'info' | 'warn' | 'error',
  message: string,
): Promise<void> {
  await db.query(
    `INSERT INTO data_migration_logs (job_id, level, message) VALUES ($1, $2, $3)`,
    [id, level, message],
    {
      label: 'importer.logs',
    },
  )
}

/**
 * Ends a run: final status and reason, only if this runner still owns the job. A job that
 * completed or was cancelled will not run again: its source password is dropped.
 */
export async function finishRun(
  db: Queryable,
  id: string,
  token: string,
  status: JobStatus,
  reason: string | null,
): Promise<void> {
  await db.query(
    `UPDATE data_import_jobs
        SET status = $3, reason = $4, requested = NULL, run_token = NULL, lease_until = NULL, updated_at = now(),
            finished_at = CASE WHEN $3 IN ('completed', 'failed', 'cancelled') THEN now() ELSE NULL END,
            source_url = CASE WHEN $3 IN ('completed', 'cancelled') THEN NULL ELSE source_url END
      WHERE id = $1 AND run_token = $2`,
    [id, token, status, reason],
    { label: 'importer.jobs' },
  )
}

/**
 * Asks a job to pause or cancel. A running job acts on it at its next batch boundary; a job
 * that is not running changes status at once. Returns the job after the request.
 */
export async function requestJobAction(
  db: Queryable,
  id: string,
  action: 'pause' | 'cancel',
): Promise<ImportJob> {
  await getImportJob(db, id) // 404 for an unknown id
  const ids = [id, ...(await listChildJobs(db, id)).map((c) => c.id)]
  for (const jid of ids) {
    await db.query(
      `UPDATE data_import_jobs
          SET requested = CASE WHEN status = 'running' THEN $2 ELSE requested END,
              status = CASE
                WHEN status = 'running' THEN status
                WHEN $2 = 'cancel' AND status IN ('queued', 'paused', 'failed') THEN 'cancelled'
                WHEN $2 = 'pause' AND status = 'queued' THEN 'paused'
                ELSE status END,
              reason = CASE WHEN status <> 'running' AND $2 = 'cancel' AND status IN ('queued', 'paused', 'failed')
                            THEN 'cancelled by request' ELSE reason END,
              finished_at = CASE WHEN status <> 'running' AND $2 = 'cancel' AND status IN ('queued', 'paused', 'failed')
                            THEN now() ELSE finished_at END,
              source_url = CASE WHEN status <> 'running' AND $2 = 'cancel' AND status IN ('queued', 'paused', 'failed')
                           THEN NULL ELSE source_url END,
              updated_at = now()
        WHERE id = $1`,
      [jid, action],
      { label: 'importer.jobs' },
    )
  }
  return getImportJob(db, id)
}

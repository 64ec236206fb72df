import { stat } from 'node:fs/promises'
import { resolve as resolvePath } from 'node:path'
import { Queue, Worker, type ConnectionOptions, type WorkerOptions } from 'bullmq'
import { silentLogger, type Logger } from '@strata/core'
import type { Database } from '@strata/pg'
import { resolveTarget } from './catalog.js'
import { importErrors } from './errors.js'
import { runImportJob, type ImportOptions } from './import-runner.js'
import { getImportJob, insertJob, listChildJobs, listRejects } from './job-store.js'
import { planChunks } from './plan-chunks.js'
import { RejectFileWriter, rejectHeader } from './reject-file.js'
import { resolveImportPath } from './resolve-import-path.js'
import { fileFingerprint } from './sources/open-file.js'
import { serializableSpec, validateSpec, type ImportSpec } from './spec.js'

// Why BullMQ rather than pg-boss: the service already runs Redis for the cache bus and locks,
// BullMQ is the maintained queue with stalled-job recovery (a worker killed mid-chunk has its
// chunk redelivered after the lock expires), and it keeps queue polling off Postgres, which is
// busy with the COPY traffic itself. Exactly-once does not rest on the queue: each chunk is a
// data_import_jobs row whose checkpoint advances in the same transaction as its rows, so a
// redelivered chunk resumes where its last commit left off.

/** @defaultValue 'strata-import-chunks' */
export const IMPORT_QUEUE_NAME = 'strata-import-chunks'

export interface QueueOptions {
  /** BullMQ (ioredis) connection. */
  connection: ConnectionOptions
  /** BullMQ key prefix. @defaultValue 'bull' */
  prefix?: string
  /** @defaultValue IMPORT_QUEUE_NAME */
  queueName?: string
}

export interface ChunkedImportOptions extends QueueOptions {
  /** Number of byte-range chunks. @defaultValue spec.workers */
  chunks?: number
  baseDir?: string
  importDir?: string
}

interface ChunkPayload {
  jobId: string
}

/**
 * Splits a CSV/NDJSON import into chunks (byte ranges aligned on record boundaries), records a
 * parent job plus one child job per chunk, and queues the chunks on BullMQ. Returns the parent id;
 * `createImportWorker` processes the chunks in any number of processes.
 */
export async function enqueueChunkedImport(
  db: Database,
  input: ImportSpec | unknown,
  options: ChunkedImportOptions,
): Promise<{ jobId: string; chunkIds: string[] }> {
  const spec = validateSpec(input)
  if (spec.source.format === 'postgres')
    throw importErrors.create('STRATA_IMPORT_INVALID_SPEC', {
      message: 'import spec: source.format: chunked imports read files (csv or ndjson)',
      details: { field: 'source.format' },
    })
  if (
    spec.target.mode === 'upsert' ||
    spec.target.mode === 'update' ||
    spec.target.mode === 'purge'
  )
    throw importErrors.create('STRATA_IMPORT_INVALID_SPEC', {
      message: `import spec: target.mode: ${spec.target.mode} needs file order (last occurrence wins / purge first); run it in one process`,
      details: { field: 'target.mode' },
    })
  await resolveTarget(db, spec)
  const baseDir = options.baseDir ?? process.cwd()
  const path = options.importDir
    ? resolveImportPath(options.importDir, spec.source.path)
    : resolvePath(baseDir, spec.source.path)
  const chunks = await planChunks(spec.source, path, options.chunks ?? spec.workers)
  const stored = serializableSpec(input) as { source: { path: string } }
  stored.source.path = path
  const fingerprint = await fileFingerprint(path)
  const totalBytes = (await stat(path)).size
  const jobId = await insertJob(db, {
    spec: stored,
    baseDir,
    fingerprint,
    totalBytes,
    status: 'running',
  })
  const chunkIds: string[] = []
  for (const [i, chunk] of chunks.entries())
    chunkIds.push(
      await insertJob(db, {
        spec: stored,
        baseDir,
        fingerprint,
        totalBytes: chunk.end - chunk.start,
        parentId: jobId,
        chunkIndex: i,
        chunk,
      }),
    )
  await queueChunks(options, chunkIds)
  return { jobId, chunkIds }
}

async function queueChunks(options: QueueOptions, ids: string[]): Promise<void> {
  const queue = new Queue<ChunkPayload>(options.queueName ?? IMPORT_QUEUE_NAME, {
    connection: options.connection,
    ...(options.prefix ? { prefix: options.prefix } : {}),
  })
  try {
    await queue.addBulk(
      ids.map((id) => ({
        name: 'chunk',
        data: { jobId: id },
        // Queue-level retries for a chunk that failed (e.g. database down longer than the
        // importer's own retries); each retry resumes from the chunk's checkpoint.
        opts: {
          jobId: `${id}-${Date.now()}`,
          attempts: 5,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: 1000,
          removeOnFail: 1000,
        },
      })),
    )
  } finally {
    await queue.close()
  }
}

/** Re-queues the unfinished chunks of a paused or failed chunked job. */
export async function resumeChunkedImport(
  db: Database,
  jobId: string,
  options: QueueOptions,
): Promise<string[]> {
  const children = await listChildJobs(db, jobId)
  const todo = children.filter(
    (c) =>
      c.status === 'paused' ||
      c.status === 'failed' ||
      c.status === 'queued' ||
      c.status === 'running',
  )
  await db.query(
    `UPDATE data_import_jobs SET status = 'running', reason = NULL, finished_at = NULL WHERE id = $1`,
    [jobId],
  )
  await db.query(
    `UPDATE data_import_jobs SET status = 'queued' WHERE id = ANY($1::uuid[]) AND status IN ('paused', 'failed')`,
    [todo.map((c) => c.id)],
  )
  await queueChunks(
    options,
    todo.map((c) => c.id),
  )
  return todo.map((c) => c.id)
}

/**
 * Folds the children's counts and statuses into the parent: completed when every chunk is,
 * failed/paused/cancelled when one is (and none is still running). Writes the parent's reject
 * file (all chunks, in line order) when the job completes.
 */
export async function refreshChunkedJob(db: Database, jobId: string): Promise<void> {
  // The reject file is written before the parent is marked completed, so whoever sees
  // 'completed' also finds the complete file.
  const { rows: agg } = await db.query<{ pending: string }>(
    `SELECT count(*) FILTER (WHERE status <> 'completed') AS pending FROM data_import_jobs WHERE parent_id = $1`,
    [jobId],
    { label: 'importer.jobs' },
  )
  if (Number(agg[0]?.pending ?? 1) === 0) await writeParentRejectFile(db, jobId)

  await db.query(
    `UPDATE data_import_jobs p
        SET rows_read = s.read, rows_loaded = s.loaded, rows_rejected = s.rejected, rows_skipped = s.skipped,
            checkpoint_records = s.read, batches = s.batches,
            error_rate = CASE WHEN s.read > 0 THEN s.rejected::float8 / s.read ELSE 0 END,
            status = CASE
              WHEN p.status IN ('completed', 'cancelled') THEN p.status
              WHEN s.running > 0 THEN 'running'
              WHEN s.done = s.n THEN 'completed'
              WHEN s.failed > 0 THEN 'failed'
              WHEN s.cancelled > 0 THEN 'cancelled'
              WHEN s.paused > 0 THEN 'paused'
              ELSE 'running' END,
            reason = CASE WHEN s.running = 0 AND s.done < s.n THEN s.reason ELSE NULL END,
            finished_at = CASE WHEN s.running = 0 AND s.done = s.n THEN now() ELSE NULL END,
            updated_at = now()
       FROM (SELECT count(*) AS n, sum(rows_read) AS read, sum(rows_loaded) AS loaded,
                    sum(rows_rejected) AS rejected, sum(rows_skipped) AS skipped, sum(batches) AS batches,
                    count(*) FILTER (WHERE status = 'completed') AS done,
                    count(*) FILTER (WHERE status IN ('running', 'queued')) AS running,
                    count(*) FILTER (WHERE status = 'failed') AS failed,
                    count(*) FILTER (WHERE status = 'paused') AS paused,
                    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                    string_agg(DISTINCT reason, '; ') AS reason
               FROM data_import_jobs WHERE parent_id = $1) s
      WHERE p.id = $1
      RETURNING p.status`,
    [jobId],
    { label: 'importer.jobs' },
  )
}

async function writeParentRejectFile(db: Database, jobId: string): Promise<void> {
  const job = await getImportJob(db, jobId)
  const spec = job.spec as ImportSpec
  if (!spec.errors?.rejectFile) return
  const path = resolvePath(job.baseDir ?? process.cwd(), spec.errors.rejectFile)
  const header = job.chunk?.header ?? (await listChildJobs(db, jobId))[0]?.chunk?.header
  const w = new RejectFileWriter(path, rejectHeader(header), await listRejects(db, jobId))
  await w.close()
}

export interface ImportWorkerOptions extends QueueOptions {
  /** Chunks processed at once by this worker. @defaultValue 1 */
  concurrency?: number
  logger?: Logger
  /** Passed to runImportJob. */
  importOptions?: Omit<ImportOptions, 'spec'>
  /** Extra BullMQ worker options (e.g. lockDuration / stalledInterval: how fast a chunk of a dead worker is redelivered). */
  workerOptions?: Partial<Omit<WorkerOptions, 'connection' | 'prefix' | 'concurrency'>>
}

/** A BullMQ worker that runs queued chunks (call `close()` to stop it). */
export function createImportWorker(
  db: Database,
  options: ImportWorkerOptions,
): Worker<ChunkPayload> {
  const log = options.logger ?? silentLogger
  return new Worker<ChunkPayload>(
    options.queueName ?? IMPORT_QUEUE_NAME,
    async (job) => {
      const child = await getImportJob(db, job.data.jobId)
      if (child.status === 'completed' || child.status === 'cancelled') return child.counts
      const result = await runImportJob(db, child.id, {
        ...options.importOptions,
        ...(options.logger ? { logger: options.logger } : {}),
      })
      if (child.parentId) await refreshChunkedJob(db, child.parentId)
      log.info(
        { chunk: child.id, status: result.status, counts: result.counts },
        'import chunk finished',
      )
      if (result.status === 'failed') throw new Error(result.reason ?? 'import chunk failed')
      return result.counts
    },
    {
      ...options.workerOptions,
      connection: options.connection,
      ...(options.prefix ? { prefix: options.prefix } : {}),
      concurrency: options.concurrency ?? 1,
    },
  )
}

import { readdir, realpath } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { Logger } from '@strata/core'
import {
  createImportJob,
  getImportJob,
  importDefaults,
  importErrors,
  listChildJobs,
  listJobs,
  listRejects,
  rejectHeader,
  rejectLine,
  requestJobAction,
  runImportJob,
  type ImportJob,
  type ImportResult,
  type JobListCursor,
  type ListJobsOptions,
} from '@strata/importer'
import type { Database } from '@strata/pg'
import { UploadStore } from './upload-store.js'

export interface ImportServiceOptions {
  /** Largest accepted upload. @defaultValue importDefaults.maxUploadBytes (1 GiB) */
  maxUploadBytes?: number
  /**
   * How long the upload of a failed or paused job is kept, from its last update, so that the
   * job can resume (ms). A completed or cancelled job's upload is deleted when the job ends.
   * @defaultValue 86400000 (24 h)
   */
  uploadRetentionMs?: number
  /** How often uploads are checked against their jobs (ms). @defaultValue retention, at most 1 h */
  uploadSweepEveryMs?: number
  /**
   * Lease of a running job (ms), renewed every third of it by its runner. A job still
   * 'running' past its lease was left by an instance that died. @defaultValue 15000
   */
  leaseMs?: number
  /**
   * How often this instance looks for such jobs and takes them over (ms); 0: never.
   * @defaultValue 5000
   */
  takeOverEveryMs?: number
}

/** How long close() waits for running jobs to reach their pause (ms). */
const CLOSE_WAIT_MS = 10_000
const UPLOAD_DEFAULTS = {
  retentionMs: 86_400_000,
  maxSweepEveryMs: 3_600_000,
  minSweepEveryMs: 1000,
}

/** A queued or running job that has not moved for this long (ms) was left by a dead process. */
const STALE_RUN_MS = 86_400_000
type UploadFate = 'keep' | 'delete'

/**
 * Import jobs run in this process, in the background: create (from a spec, an upload's
 * included), list, pause, cancel, resume. close() asks running jobs to pause at their next
 * batch boundary (they stay resumable) and waits for them, at most 10 s.
 */
export class ImportService {
  readonly uploads: UploadStore
  readonly #db: Database
  readonly #importDir: string
  readonly #log: Logger
  readonly #running = new Map<string, Promise<ImportResult | undefined>>()
  readonly #retentionMs: number
  readonly #sweepEveryMs: number
  #sweepTimer: NodeJS.Timeout | undefined
  #sweeping: Promise<void> | undefined
  readonly #leaseMs: number
  readonly #takeOverEveryMs: number
  #takeOverTimer: NodeJS.Timeout | undefined
  #scanning: Promise<void> | undefined
  #closed = false

  constructor(db: Database, options: ImportServiceOptions & { importDir: string; logger: Logger }) {
    this.#db = db
    this.#importDir = options.importDir
    this.#log = options.logger
    this.uploads = new UploadStore(
      options.importDir,
      options.maxUploadBytes ?? importDefaults.maxUploadBytes,
    )
    this.#retentionMs = options.uploadRetentionMs ?? UPLOAD_DEFAULTS.retentionMs
    this.#sweepEveryMs =
      options.uploadSweepEveryMs ??
      Math.min(
        Math.max(this.#retentionMs, UPLOAD_DEFAULTS.minSweepEveryMs),
        UPLOAD_DEFAULTS.maxSweepEveryMs,
      )
    this.#leaseMs = options.leaseMs ?? 15_000
    this.#takeOverEveryMs = options.takeOverEveryMs ?? 5000
  }

  /**
   * Deletes the uploads no job needs any more now (left by a previous run too), then every
   * `uploadSweepEveryMs`.
   */
  start(): void {
    if (this.#sweepTimer) return
    void this.sweepUploads()
    this.#sweepTimer = setInterval(() => void this.sweepUploads(), this.#sweepEveryMs)
    this.#sweepTimer.unref()
    // The first scan waits one interval: a restarted instance's own resume goes first.
    if (this.#takeOverEveryMs > 0) {
      this.#takeOverTimer = setInterval(() => void this.takeOverOrphans(), this.#takeOverEveryMs)
      this.#takeOverTimer.unref()
    }
  }

  /**
   * Takes over the jobs this instance could run (created under its import directory) that are
   * still 'running' past their lease: their instance died. Each claim is conditional on the
   * lease having passed, so of several instances scanning at once exactly one runs a job; a
   * runner that was only slow finds its run token replaced at its next checkpoint. A job asked
   * to pause or cancel before its runner died gets that status instead.
   */
  takeOverOrphans(): Promise<void> {
    this.#scanning ??= this.#takeOver().finally(() => (this.#scanning = undefined))
    return this.#scanning
  }

  async #takeOver(): Promise<void> {
    try {
      // Only jobs with a lease: one left 'running' by a version without leases waits for an
      // operator's resume, as before.
      const expired = `status = 'running' AND parent_id IS NULL AND base_dir = $1
          AND lease_until IS NOT NULL AND lease_until < now()
          AND NOT EXISTS (SELECT 1 FROM data_import_jobs c WHERE c.parent_id = data_import_jobs.id)`
      await this.#db.query(
        `UPDATE data_import_jobs
            SET status = CASE requested WHEN 'pause' THEN 'paused' ELSE 'cancelled' END,
                reason = CASE requested WHEN 'pause' THEN 'paused by request' ELSE 'cancelled by request' END,
                finished_at = CASE requested WHEN 'pause' THEN NULL ELSE now() END,
                source_url = CASE requested WHEN 'pause' THEN source_url ELSE NULL END,
                requested = NULL, run_token = NULL, lease_until = NULL, updated_at = now()
          WHERE requested IS NOT NULL AND ${expired}`,
        [this.#importDir],
        { label: 'server.imports.orphans' },
      )
      const { rows } = await this.#db.query<{ id: string }>(
        `SELECT id FROM data_import_jobs WHERE requested IS NULL AND ${expired}
          ORDER BY lease_until LIMIT 10`,
        [this.#importDir],
        { label: 'server.imports.orphans' },
      )
      for (const { id } of rows) {
        if (this.#closed) return
        if (this.#running.has(id)) continue
        this.#log.info(
          { jobId: id },
          'taking over an import job whose instance stopped renewing it',
        )
        await this.#start(id, true)
      }
    } catch (err) {
      this.#log.warn({ err }, 'scan for orphaned import jobs failed')
    }
  }

  /**
   * Creates a job from `spec` and starts it; resolves once it is claimed (or ended). `upload`
   * is the stored file the spec reads, removed when the catalog refuses the spec.
   */
  async create(spec: Record<string, unknown>, upload?: string): Promise<ImportJob> {
    let jobId: string
    try {
      jobId = await createImportJob(this.#db, spec, {
        importDir: this.#importDir,
        baseDir: this.#importDir,
      })
    } catch (err) {
      // A spec the catalog refuses (unknown table or column): the upload is of no use.
      if (upload) await this.uploads.remove(upload)
      throw err
    }
    await this.#start(jobId)
    return getImportJob(this.#db, jobId)
  }

  get(id: string): Promise<ImportJob> {
    return getImportJob(this.#db, id)
  }

  /** A page of jobs, newest first. */
  list(options: ListJobsOptions): Promise<{ items: ImportJob[]; next: JobListCursor | null }> {
    return listJobs(this.#db, options)
  }

  /** The job's rejected rows as CSV (header included); 404 for an unknown job. */
  async rejectsCsv(id: string): Promise<string> {
    const job = await getImportJob(this.#db, id)
    const rejects = await listRejects(this.#db, id)
    // The header the CLI's reject file has: the source's fields (a chunked job's chunks carry it).
    let header = job.sourceHeader ?? job.chunk?.header
    if (!header) {
      const child = (await listChildJobs(this.#db, id)).find((c) => c.sourceHeader ?? c.chunk)
      header = child?.sourceHeader ?? child?.chunk?.header
    }
    return rejectHeader(header ?? undefined) + rejects.map(rejectLine).join('')
  }

  /**
   * Asks a job to pause or cancel at its next batch boundary. A job that was not running is
   * cancelled at once, and its upload deleted.
   */
  async requestAction(id: string, action: 'pause' | 'cancel'): Promise<ImportJob> {
    const job = await requestJobAction(this.#db, id, action)
    if (job.status === 'cancelled') await this.#sweepJobUpload(job)
    return job
  }

  /** Runs a paused, failed or orphaned job again; 409 when it runs here or has ended. */
  async resume(id: string): Promise<ImportJob> {
    let job = await getImportJob(this.#db, id)
    // A run that already recorded its pause may still be closing its source: let it finish.
    if (job.status !== 'running' && this.#running.has(job.id)) {
      await this.#running.get(job.id)
      job = await getImportJob(this.#db, id)
    }
    const here = this.#running.has(job.id)
    if (here || !['paused', 'failed', 'queued', 'running'].includes(job.status))
      throw importErrors.create('STRATA_IMPORT_JOB_NOT_RESUMABLE', {
        message: `Import job ${job.id} is ${here ? 'running in this instance' : job.status}`,
      })
    // A job that failed on its spec would fail the same way again.
    if (job.resumable === false)
      throw importErrors.create('STRATA_IMPORT_JOB_NOT_RESUMABLE', {
        message:
          `Import job ${job.id} failed on its spec and would fail again: ${job.reason ?? ''}`.trim(),
      })
    await this.#start(job.id)
    return getImportJob(this.#db, job.id)
  }

  /** Stops the upload sweep; pauses the running jobs (resumable) and waits for them, at most 10 s. */
  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#sweepTimer)
    this.#sweepTimer = undefined
    clearInterval(this.#takeOverTimer)
    this.#takeOverTimer = undefined
    await this.#scanning
    await this.#sweeping
    await Promise.all(
      [...this.#running.keys()].map((id) =>
        requestJobAction(this.#db, id, 'pause').catch(() => {}),
      ),
    )
    await Promise.race([
      Promise.all(this.#running.values()),
      new Promise((r) => setTimeout(r, CLOSE_WAIT_MS).unref()),
    ])
  }

  /**
   * Runs the job in the background; resolves once it is claimed (status running) or ended.
   * `takeOver`: only if its lease has passed (see takeOverOrphans).
   */
  #start(jobId: string, takeOver = false): Promise<void> {
    if (this.#running.has(jobId)) return Promise.resolve()
    let claimed!: () => void
    const started = new Promise<void>((r) => (claimed = r))
    const run = runImportJob(this.#db, jobId, {
      importDir: this.#importDir,
      logger: this.#log,
      leaseMs: this.#leaseMs,
      takeOver,
      onJob: () => claimed(),
    })
      .catch((err: unknown) => {
        // Another instance claimed it first (or its runner came back): nothing to do here.
        if (takeOver && importErrors.is(err, 'STRATA_IMPORT_JOB_NOT_RESUMABLE'))
          this.#log.debug({ jobId }, 'import job taken over by another instance first')
        else this.#log.error({ err, jobId }, 'import job failed to run')
        return undefined
      })
      .finally(() => {
        this.#running.delete(jobId)
        claimed()
      })
      .then(async (result) => {
        // A completed or cancelled job's upload goes now; a failed or paused one's is kept for
        // the retention period (the sweep decides, from every job naming the file).
        if (result && (result.status === 'completed' || result.status === 'cancelled'))
          await this.#sweepJobUpload(await getImportJob(this.#db, jobId)).catch((err: unknown) =>
            this.#log.warn({ err, jobId }, 'could not delete the upload of an import job'),
          )
        return result
      })
    this.#running.set(jobId, run)
    return started
  }

  /**
   * Deletes every file of `<importDir>/uploads` that no job needs: all jobs naming it completed
   * or cancelled, or failed or paused (or left running by a dead process) longer than the
   * retention ago. A file no job names is left alone.
   */
  sweepUploads(): Promise<void> {
    this.#sweeping ??= this.#sweep().finally(() => (this.#sweeping = undefined))
    return this.#sweeping
  }

  async #sweep(only?: string[]): Promise<void> {
    const dir = join(this.#importDir, 'uploads')
    let names: string[]
    try {
      names = only ?? (await readdir(dir))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.#log.warn({ err, dir }, 'could not list import uploads')
      return
    }
    if (names.length === 0) return
    try {
      const jobs = await this.#jobsNaming(names)
      for (const name of names) {
        if (this.#fate(jobs.get(name) ?? []) === 'delete') {
          await this.uploads.remove(join('uploads', name))
          this.#log.info({ upload: name }, 'import upload deleted')
        }
      }
    } catch (err) {
      this.#log.warn({ err }, 'import upload sweep failed')
    }
  }

  /** Deletes the upload `job` reads, when no other job still needs it. */
  async #sweepJobUpload(job: ImportJob): Promise<void> {
    const path = (job.spec as { source?: { path?: unknown } } | null)?.source?.path
    if (typeof path !== 'string' || basename(dirname(path)) !== 'uploads') return
    // Only a file of our uploads directory: a server-side source is the operator's own file.
    const uploads = await realpath(join(this.#importDir, 'uploads')).catch(() => undefined)
    if (uploads && (await realpath(dirname(path)).catch(() => undefined)) === uploads)
      await this.#sweep([basename(path)])
  }

  /** The top-level jobs whose source is `uploads/<name>`, by name. */
  async #jobsNaming(
    names: string[],
  ): Promise<Map<string, { id: string; status: string; updatedAt: Date }[]>> {
    const { rows } = await this.#db.query<{
      id: string
      name: string
      status: string
      updated_at: Date
    }>(
      `SELECT id, substring(spec->'source'->>'path' from '[^/]+$') AS name, status, updated_at
         FROM data_import_jobs
        WHERE parent_id IS NULL
          AND spec->'source'->>'path' LIKE '%/uploads/%'
          AND substring(spec->'source'->>'path' from '[^/]+$') = ANY($1::text[])`,
      [names],
      { label: 'server.imports.uploads' },
    )
    const out = new Map<string, { id: string; status: string; updatedAt: Date }[]>()
    for (const r of rows) {
      const list = out.get(r.name) ?? []
      list.push({ id: r.id, status: r.status, updatedAt: r.updated_at })
      out.set(r.name, list)
    }
    return out
  }

  #fate(jobs: { id: string; status: string; updatedAt: Date }[]): UploadFate {
    // No job names it: an upload in progress, or a file of another database's jobs when
    // several share the import directory. Not ours to judge.
    if (jobs.length === 0) return 'keep'
    const now = Date.now()
    for (const job of jobs) {
      if (job.status === 'completed' || job.status === 'cancelled') continue
      if (this.#running.has(job.id)) return 'keep'
      const idleMs = now - job.updatedAt.getTime()
      // Queued or running: maybe on another instance (it checkpoints every batch); only a job
      // idle for a day (its process died) counts as failed.
      if ((job.status === 'queued' || job.status === 'running') && idleMs < STALE_RUN_MS)
        return 'keep'
      // Failed or paused: resumable until the retention has passed since it last moved.
      if (idleMs < this.#retentionMs) return 'keep'
    }
    return 'delete'
  }
}

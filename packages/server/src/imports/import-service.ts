import type { Logger } from '@strata/core'
import {
  createImportJob,
  getImportJob,
  importDefaults,
  importErrors,
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
}

/** How long close() waits for running jobs to reach their pause (ms). */
const CLOSE_WAIT_MS = 10_000

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

  constructor(db: Database, options: ImportServiceOptions & { importDir: string; logger: Logger }) {
    this.#db = db
    this.#importDir = options.importDir
    this.#log = options.logger
    this.uploads = new UploadStore(
      options.importDir,
      options.maxUploadBytes ?? importDefaults.maxUploadBytes,
    )
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
    await getImportJob(this.#db, id)
    const rejects = await listRejects(this.#db, id)
    return rejectHeader(undefined) + rejects.map(rejectLine).join('')
  }

  /** Asks a job to pause or cancel at its next batch boundary. */
  requestAction(id: string, action: 'pause' | 'cancel'): Promise<ImportJob> {
    return requestJobAction(this.#db, id, action)
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
    await this.#start(job.id)
    return getImportJob(this.#db, job.id)
  }

  /** Pauses the running jobs (resumable) and waits for them, at most 10 s. */
  async close(): Promise<void> {
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

  /** Runs the job in the background; resolves once it is claimed (status running) or ended. */
  #start(jobId: string): Promise<void> {
    if (this.#running.has(jobId)) return Promise.resolve()
    let claimed!: () => void
    const started = new Promise<void>((r) => (claimed = r))
    const run = runImportJob(this.#db, jobId, {
      importDir: this.#importDir,
      logger: this.#log,
      onJob: () => claimed(),
    })
      .catch((err: unknown) => {
        this.#log.error({ err, jobId }, 'import job failed to run')
        return undefined
      })
      .finally(() => {
        this.#running.delete(jobId)
        claimed()
      })
    this.#running.set(jobId, run)
    return started
  }
}

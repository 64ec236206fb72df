import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { resolve as resolvePath } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { silentLogger, type Logger } from '@strata/core'
import { isTransientDbError, type Database } from '@strata/pg'
import { BatchWriter, type ArchiveSink } from './batch-writer.js'
import { resolveTarget } from './catalog.js'
import { compileConverter } from './convert.js'
import { importErrors } from './errors.js'
import {
  advanceCheckpoint,
  claimJob,
  DEFAULT_LEASE_MS,
  finishRun,
  getImportJob,
  insertJob,
  isResumable,
  insertRejects,
  listRejects,
  renewLease,
  restoreSourceUrl,
  setSourceHeader,
  type ImportJob,
  type JobStatus,
} from './job-store.js'
import { LookupResolver } from './lookup-resolver.js'
import { importDefaults } from './options.js'
import { RejectFileWriter, rejectHeader, type Reject } from './reject-file.js'
import { openSource } from './open-source.js'
import { readBatches, type Batch } from './read-batches.js'
import { resolveImportPath } from './resolve-import-path.js'
import { fileFingerprint } from './sources/open-file.js'
import { checkSourceQuery } from './sources/postgres-source.js'
import { serializableSpec, validateSpec, type ImportSpec, type ResolvedSpec } from './spec.js'

export interface ImportProgress {
  jobId: string
  status: JobStatus
  read: number
  loaded: number
  rejected: number
  skipped: number
  /** Rows read per second over this run. */
  rowsPerSec: number
  bytesRead: number | null
  totalBytes: number | null
  /** Seconds left, from bytes (files) — null when unknown. */
  etaSeconds: number | null
  batchSize: number
  elapsedMs: number
}

export interface ImportOptions {
  /** Relative spec paths resolve against this folder (the spec file's). @defaultValue process.cwd() */
  baseDir?: string
  /** Server-side use: every file path must resolve inside this directory (see resolveImportPath). */
  importDir?: string
  /** Overrides source.path (CLI --file). */
  file?: string
  logger?: Logger
  /** Called once the job row exists, before any row is read. */
  onJob?: (jobId: string) => void
  /** Called every `progressIntervalMs` and once at the end. */
  onProgress?: (p: ImportProgress) => void
  /** @defaultValue 2000 */
  progressIntervalMs?: number
  /** Intake pauses while RSS is above this. @defaultValue 1 GiB */
  memoryLimitBytes?: number
  /** Transient-error retry policy per batch. */
  retry?: { attempts?: number; baseMs?: number; maxMs?: number }
  /** Resume only: replaces the stored spec (needed when it had custom transform functions). */
  spec?: ImportSpec
  /**
   * Parse and convert in a worker thread (piscina), overlapping with the database work; not for
   * postgres sources or specs with custom transform functions. @defaultValue importDefaults.parseWorker
   */
  parseWorker?: boolean
  /** Resume only: a new error threshold (a job paused on errors continues with a higher one). */
  maxErrorRate?: number
  /**
   * The run's lease (ms), renewed every third of it while the run lives: a job 'running' past
   * its lease was left by a dead process, and `takeOver` may claim it. @defaultValue 15000
   */
  leaseMs?: number
  /**
   * Claim the job only if it is 'running' and its lease has passed (another process died while
   * running it); otherwise STRATA_IMPORT_JOB_NOT_RESUMABLE and nothing runs.
   */
  takeOver?: boolean
  /**
   * Pause from this process (the CLI's Ctrl-C): once aborted the run stops reading and parsing,
   * lets the batch being written commit, and ends paused. A request through the database
   * (`requestJobAction`) is only seen when a batch commits; this one is seen at once.
   */
  signal?: AbortSignal
}

export interface ImportResult {
  jobId: string
  status: JobStatus
  reason: string | null
  counts: { read: number; loaded: number; rejected: number; skipped: number }
  elapsedMs: number
  rowsPerSec: number
  rejectFile: string | null
  /** False when a resume can only fail the same way (see ImportJob.resumable). */
  resumable: boolean
}

interface CommitResult {
  requested: 'pause' | 'cancel' | null
  rejects: Reject[]
  loaded: number
  skipped: number
}

function backoff(attempt: number, baseMs: number, maxMs: number): number {
  // Full jitter: spreads retries of several runners hitting the same outage.
  return Math.random() * Math.min(maxMs, baseMs * 2 ** attempt)
}

interface Paths {
  source: string | null
  rejectFile: string | null
  archiveFile: string | null
}

function resolvePaths(spec: ResolvedSpec, baseDir: string, opts: ImportOptions): Paths {
  const at = (p: string | undefined): string | null => {
    if (p === undefined) return null
    return opts.importDir ? resolveImportPath(opts.importDir, p) : resolvePath(baseDir, p)
  }
  const src = spec.source.format === 'postgres' ? null : at(opts.file ?? spec.source.path)
  return {
    source: src,
    rejectFile: at(spec.errors.rejectFile),
    archiveFile: at(spec.target.archiveFile),
  }
}

async function fingerprintOf(spec: ResolvedSpec, path: string | null): Promise<string> {
  if (spec.source.format === 'postgres')
    return `query:${createHash('sha256')
      .update(JSON.stringify([spec.source.query, spec.source.params ?? []]))
      .digest('hex')
      .slice(0, 32)}`
  return fileFingerprint(path!)
}

/**
 * Creates a queued job for `spec` and returns its id (the API answers with it at once and runs
 * the job in the background with `runImportJob`). Validates the spec, the catalog names and the
 * paths first, so a bad request fails before a job exists.
 */
export async function createImportJob(
  db: Database,
  input: ImportSpec | unknown,
  opts: ImportOptions = {},
): Promise<string> {
  const spec = validateSpec(input)
  // A query the SQL guard refuses fails the request, not a job later.
  if (spec.source.format === 'postgres') await checkSourceQuery(spec.source.query)
  const baseDir = opts.baseDir ?? process.cwd()
  await resolveTarget(db, spec)
  const paths = resolvePaths(spec, baseDir, opts)
  // The caller's spec (not the resolved one), so it validates again on resume.
  const stored = serializableSpec(input) as { source: { path?: string } }
  if (paths.source) stored.source.path = paths.source
  const fingerprint = await fingerprintOf(spec, paths.source)
  const totalBytes = paths.source ? (await stat(paths.source)).size : undefined
  return insertJob(db, {
    spec: stored,
    baseDir,
    fingerprint,
    ...(totalBytes !== undefined ? { totalBytes } : {}),
  })
}

/** Validates `spec`, creates a job and runs it to the end (or a pause/cancel/failure). */
export async function runImport(
  db: Database,
  spec: ImportSpec | unknown,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  const jobId = await createImportJob(db, spec, opts)
  return runImportJob(db, jobId, { ...opts, spec: spec as ImportSpec })
}

/** Continues a paused, failed or killed job from its checkpoint. */
export async function resumeImport(
  db: Database,
  jobId: string,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  return runImportJob(db, jobId, opts)
}

/** Runs (or resumes) the job `jobId`: queued, paused, failed, or 'running' after a crash. */
export async function runImportJob(
  db: Database,
  jobId: string,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  const existing = await getImportJob(db, jobId)
  if (JSON.stringify(existing.spec).includes('"[function]"') && !opts.spec)
    throw importErrors.create('STRATA_IMPORT_JOB_NOT_RESUMABLE', {
      message: `Import job ${jobId} uses custom transform functions: resume it from code with resumeImport(db, id, { spec })`,
    })
  // A new spec (from code) may fix what failed; the stored one would fail the same way again.
  if (existing.status === 'failed' && !existing.resumable && !opts.spec)
    throw importErrors.create('STRATA_IMPORT_JOB_NOT_RESUMABLE', {
      message: `Import job ${jobId} failed on an error of its spec or source, which a resume would repeat (${existing.reason}); fix the spec and start a new import`,
      details: { status: existing.status },
    })
  const spec = validateSpec(opts.spec ?? existing.spec)
  // The stored spec shows a postgres source's password as ***; the real URL is kept apart.
  await restoreSourceUrl(db, jobId, spec)
  if (opts.maxErrorRate !== undefined) spec.errors.maxErrorRate = opts.maxErrorRate
  if (
    opts.spec &&
    existing.spec &&
    (existing.spec as { source?: { path?: string } }).source?.path &&
    spec.source.format !== 'postgres'
  ) {
    // The stored spec holds the absolute source path resolved at creation.
    spec.source.path = (existing.spec as { source: { path: string } }).source.path
  }
  const claim = await claimJob(db, jobId, ['queued', 'paused', 'failed', 'running'], {
    leaseMs: opts.leaseMs ?? DEFAULT_LEASE_MS,
    expiredOnly: opts.takeOver ?? false,
  })
  opts.onJob?.(jobId)
  return new ImportRun(db, spec, claim.job, claim.token, opts).run()
}

class ImportRun {
  readonly #db: Database
  readonly #spec: ResolvedSpec
  readonly #job: ImportJob
  readonly #token: string
  readonly #opts: ImportOptions
  readonly #log: Logger
  readonly #counts: { read: number; loaded: number; rejected: number; skipped: number }
  readonly #t0 = performance.now()
  #readThisRun = 0
  #batchSize: number
  #bytesRead: number | null = null
  #status: JobStatus = 'running'
  #rejectFilePath: string | null = null

  constructor(
    db: Database,
    spec: ResolvedSpec,
    job: ImportJob,
    token: string,
    opts: ImportOptions,
  ) {
    this.#db = db
    this.#spec = spec
    this.#job = job
    this.#token = token
    this.#opts = opts
    this.#log = opts.logger ?? silentLogger
    this.#counts = { ...job.counts }
    this.#batchSize = job.batchSize
      ? Math.min(Math.max(job.batchSize, spec.batch.min), spec.batch.max)
      : spec.batch.initial
  }

  #progress(): ImportProgress {
    const elapsedMs = performance.now() - this.#t0
    const rowsPerSec = elapsedMs > 0 ? (this.#readThisRun * 1000) / elapsedMs : 0
    const total = this.#job.totalBytes
    const chunk = this.#job.chunk
    const span = chunk ? chunk.end - chunk.start : total
    let eta: number | null = null
    if (span && this.#bytesRead !== null && this.#bytesRead > 0 && elapsedMs > 0) {
      const rate = this.#bytesRead / elapsedMs
      eta = Math.max(0, (span - this.#bytesRead) / rate / 1000)
    }
    return {
      jobId: this.#job.id,
      status: this.#status,
      ...this.#counts,
      rowsPerSec,
      bytesRead: this.#bytesRead,
      totalBytes: span ?? null,
      etaSeconds: eta,
      batchSize: this.#batchSize,
      elapsedMs,
    }
  }

  async run(): Promise<ImportResult> {
    const timer = setInterval(
      () => this.#opts.onProgress?.(this.#progress()),
      this.#opts.progressIntervalMs ?? importDefaults.progressIntervalMs,
    )
    timer.unref()
    // The lease tells other instances this run is alive; the run token, not the lease, is what
    // keeps a late write of a run that lost it out (advanceCheckpoint).
    const leaseMs = this.#opts.leaseMs ?? DEFAULT_LEASE_MS
    const heartbeat = setInterval(
      () => {
        renewLease(this.#db, this.#job.id, this.#token, leaseMs).then(
          (owned) => {
            if (!owned) clearInterval(heartbeat)
          },
          (err: unknown) =>
            this.#log.warn({ err, jobId: this.#job.id }, 'could not renew the import lease'),
        )
      },
      Math.max(100, Math.floor(leaseMs / 3)),
    )
    heartbeat.unref()
    let reason: string | null = null
    let rejectWriter: RejectFileWriter | undefined
    let closeSource: (() => Promise<void>) | undefined
    try {
      const paths = resolvePaths(
        this.#spec,
        this.#job.baseDir ?? this.#opts.baseDir ?? process.cwd(),
        {
          ...this.#opts,
          file: undefined,
        },
      )
      const fp = await fingerprintOf(this.#spec, paths.source)
      if (this.#job.sourceFingerprint && fp !== this.#job.sourceFingerprint)
        throw importErrors.create('STRATA_IMPORT_SOURCE_CHANGED', {
          message: `The source of import job ${this.#job.id} changed since it started (${this.#job.sourceFingerprint} → ${fp}); refusing to resume`,
        })
      const { target, lookups } = await resolveTarget(this.#db, this.#spec)
      const skip = this.#job.checkpoint.records
      let header: string[] | undefined
      let batches: AsyncGenerator<Batch>
      const useWorker =
        (this.#opts.parseWorker ?? importDefaults.parseWorker) &&
        this.#spec.source.format !== 'postgres' &&
        !Object.values(this.#spec.columns).some((c) =>
          c.transforms.some((t) => typeof t === 'function'),
        )
      if (useWorker) {
        // Loaded here, not at the top: piscina stays out of imports that never use a worker.
        const { openWorkerBatches } = await import('./worker-batches.js')
        const wb = await openWorkerBatches(
          {
            spec: this.#spec,
            path: paths.source!,
            chunk: this.#job.chunk,
            skip,
            batchSize: this.#batchSize,
            credits: 2,
          },
          () => this.#batchSize,
          this.#opts.signal,
        )
        closeSource = wb.close
        header = wb.header
        batches = wb.batches
      } else {
        const src = await openSource(this.#spec, paths.source, this.#job.chunk, {
          db: this.#db,
          skip,
        })
        closeSource = () => src.close()
        header = src.header
        const converter = compileConverter(this.#spec, header)
        // A postgres source skips by itself (MOVE); file sources are re-read up to the checkpoint.
        batches = readBatches(src, converter, {
          skip: this.#spec.source.format === 'postgres' ? 0 : skip,
          batchSize: () => this.#batchSize,
          maxBytes: this.#spec.batch.maxBytes,
          ...(this.#opts.signal ? { signal: this.#opts.signal } : {}),
        })
      }
      if (header && !this.#job.sourceHeader) await setSourceHeader(this.#db, this.#job.id, header)
      const resolvers = new Map<string, LookupResolver>()
      for (const [name, l] of lookups)
        resolvers.set(name, new LookupResolver(l, importDefaults.lookupCacheEntries))
      let archive: ArchiveSink | undefined
      if (paths.archiveFile) {
        const out = createWriteStream(paths.archiveFile, { flags: 'a' })
        archive = {
          write: (rows) =>
            new Promise<void>((res, rej) =>
              out.write(rows.map((r) => JSON.stringify(r)).join('\n') + '\n', (e) =>
                e ? rej(e) : res(),
              ),
            ),
        }
      }
      const writer = new BatchWriter({
        spec: this.#spec,
        target,
        columnNames: Object.keys(this.#spec.columns),
        lookups: resolvers,
        ...(archive ? { archive } : {}),
      })
      // Chunks do not write the reject file: their parent's file is built from all their logs.
      if (paths.rejectFile && !this.#job.parentId) {
        this.#rejectFilePath = paths.rejectFile
        // Rewritten from the database: it then matches the committed state even after a kill -9.
        rejectWriter = new RejectFileWriter(
          paths.rejectFile,
          rejectHeader(header),
          await listRejects(this.#db, this.#job.id),
        )
      }
      const outcome = await this.#loop(batches, writer, rejectWriter)
      this.#status = outcome.status
      reason = outcome.reason
    } catch (err) {
      if (importErrors.is(err, 'STRATA_IMPORT_JOB_TAKEN_OVER')) {
        const now = await getImportJob(this.#db, this.#job.id)
        this.#status = now.status
        reason = err.message
        return this.#result(reason)
      }
      this.#status = 'failed'
      if (importErrors.is(err)) {
        // The code leads the reason: it is what tells a spec error (not resumable) from the rest.
        reason = `${err.code}: ${err.message}`
        // An expected failure: its code and message say it all, the caller shows them.
        this.#log.debug({ jobId: this.#job.id, code: err.code }, 'import failed')
      } else {
        reason = err instanceof Error ? err.message : String(err)
        this.#log.error({ err, jobId: this.#job.id }, 'import failed')
      }
    } finally {
      clearInterval(timer)
      clearInterval(heartbeat)
      await closeSource?.().catch(() => {})
      await rejectWriter?.close().catch(() => {})
    }
    await finishRun(this.#db, this.#job.id, this.#token, this.#status, reason)
    this.#opts.onProgress?.(this.#progress())
    return this.#result(reason)
  }

  #result(reason: string | null): ImportResult {
    const elapsedMs = performance.now() - this.#t0
    return {
      jobId: this.#job.id,
      status: this.#status,
      reason,
      counts: { ...this.#counts },
      elapsedMs,
      rowsPerSec: elapsedMs > 0 ? (this.#readThisRun * 1000) / elapsedMs : 0,
      rejectFile: this.#rejectFilePath,
      resumable: isResumable(this.#status, reason),
    }
  }

  async #commit(batch: Batch, writer: BatchWriter, first: boolean): Promise<CommitResult> {
    const retry = { ...importDefaults.retry, ...this.#opts.retry }
    const purge = first && this.#spec.target.mode === 'purge' && this.#job.checkpoint.records === 0
    for (let attempt = 0; ; attempt++) {
      const t0 = performance.now()
      try {
        return await this.#db.transaction(
          async (tx) => {
            const out = await writer.write(tx, batch.rows, { purge })
            const rejects = [...batch.rejects, ...out.rejects].sort((a, b) => a.line - b.line)
            await insertRejects(tx, this.#job.id, rejects)
            const elapsed = performance.now() - this.#t0
            const requested = await advanceCheckpoint(tx, this.#job.id, this.#token, {
              records: batch.records,
              line: batch.lastLine,
              read: batch.records,
              loaded: out.loaded,
              rejected: rejects.length,
              skipped: out.skipped,
              batchSize: this.#batchSize,
              bytesRead: this.#bytesRead,
              throughputRps:
                elapsed > 0 ? ((this.#readThisRun + batch.records) * 1000) / elapsed : 0,
              elapsedMs: performance.now() - t0,
            })
            return { requested, rejects, loaded: out.loaded, skipped: out.skipped }
          },
          // Retries happen here (with the importer's policy), not inside transaction().
          { label: 'importer.batch', maxRetries: 0 },
        )
      } catch (err) {
        if (attempt + 1 < retry.attempts && isTransientDbError(err)) {
          const wait = backoff(attempt, retry.baseMs, retry.maxMs)
          this.#log.warn(
            { err, jobId: this.#job.id, attempt: attempt + 1, wait },
            'import batch failed transiently; retrying',
          )
          await sleep(wait)
          continue
        }
        if (isTransientDbError(err))
          throw importErrors.create('STRATA_IMPORT_DB_FAILED', {
            message: `The database kept failing after ${attempt + 1} attempts: ${(err as Error).message}`,
            cause: err,
          })
        throw err
      }
    }
  }

  #adapt(ms: number, records: number): void {
    const { min, max, targetMs } = this.#spec.batch
    if (records < this.#batchSize || ms <= 0) return
    const ideal = (this.#batchSize * targetMs) / ms
    // At most ×2 / ÷2 per step: one slow batch (checkpoint, autovacuum) must not collapse the size.
    const next = Math.min(this.#batchSize * 2, Math.max(this.#batchSize / 2, ideal))
    this.#batchSize = Math.round(Math.min(max, Math.max(min, next)))
  }

  async #loop(
    source: AsyncGenerator<Batch>,
    writer: BatchWriter,
    rejectWriter: RejectFileWriter | undefined,
  ): Promise<{ status: JobStatus; reason: string | null }> {
    const memoryLimit = this.#opts.memoryLimitBytes ?? importDefaults.memoryLimitBytes
    const it = source
    const signal = this.#opts.signal
    const paused = { status: 'paused' as const, reason: 'paused by request' }
    // Resolves when the pause signal fires, so a wait for the next batch does not outlast it.
    const aborted = new Promise<'aborted'>((r) => {
      if (signal?.aborted) r('aborted')
      else signal?.addEventListener('abort', () => r('aborted'), { once: true })
    })
    let first = true
    // Pipeline: batch k+1 is parsed, converted and its lookups resolved while batch k is being
    // written (the database works in its own process meanwhile). Only one write is in flight, so
    // checkpoints advance strictly in file order.
    let inFlight: { batch: Batch; t0: number; done: Promise<CommitResult> } | undefined
    const settle = async (): Promise<{ status: JobStatus; reason: string | null } | undefined> => {
      if (!inFlight) return undefined
      const { batch, t0, done } = inFlight
      inFlight = undefined
      const res = await done
      this.#adapt(performance.now() - t0, batch.records)
      this.#readThisRun += batch.records
      this.#counts.read += batch.records
      this.#counts.loaded += res.loaded
      this.#counts.rejected += res.rejects.length
      this.#counts.skipped += res.skipped
      await rejectWriter?.append(res.rejects)
      if (res.requested === 'cancel') return { status: 'cancelled', reason: 'cancelled by request' }
      if (res.requested === 'pause') return { status: 'paused', reason: 'paused by request' }
      const rate = this.#counts.read > 0 ? this.#counts.rejected / this.#counts.read : 0
      if (rate > this.#spec.errors.maxErrorRate)
        return {
          status: 'paused',
          reason: `error rate ${(rate * 100).toFixed(2)}% (${this.#counts.rejected} of ${this.#counts.read} rows rejected) is above maxErrorRate ${(this.#spec.errors.maxErrorRate * 100).toFixed(2)}%; fix the source or resume with a higher maxErrorRate`,
        }
      return undefined
    }
    try {
      for (;;) {
        // Memory guard: stop pulling from the source while the process is above its budget.
        for (let waited = 0; process.memoryUsage.rss() > memoryLimit && waited < 200; waited++) {
          if (waited === 0)
            this.#log.warn({ jobId: this.#job.id }, 'import paused intake: memory above limit')
          await sleep(50)
        }
        if (signal?.aborted) return (await settle()) ?? paused
        const pending = it.next()
        const n = signal ? await Promise.race([pending, aborted]) : await pending
        if (n === 'aborted') {
          // The reader stops at its next chunk; its partial batch is dropped (not checkpointed).
          pending.catch(() => {})
          return (await settle()) ?? paused
        }
        if (n.done) break
        const batch = n.value
        this.#bytesRead = batch.bytesRead
        if (batch.rows.length > 0) {
          const looked = await writer.resolveLookups(this.#db, batch.rows)
          batch.rows = looked.rows
          batch.rejects.push(...looked.rejects)
        }
        const stop = await settle()
        if (stop) return stop
        if (signal?.aborted) return paused
        const done = this.#commit(batch, writer, first)
        // Awaited in settle(); this only keeps a failure from being reported as unhandled first.
        done.catch(() => {})
        inFlight = { batch, t0: performance.now(), done }
        first = false
      }
      const stop = await settle()
      if (stop) return stop
    } finally {
      // Settles a write still in flight when parsing failed, so no transaction is left behind.
      if (inFlight) await inFlight.done.catch(() => {})
      await it.return(undefined)
    }
    return { status: 'completed', reason: null }
  }
}

import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import {
  failureCode,
  getImportJob,
  importErrors,
  importerMigrations,
  requestJobAction,
  resumeImport,
  runImport,
  type ImportProgress,
  type ImportResult,
} from '@strata/importer'
import { migrate } from '@strata/pg'
import type { Command } from '../command.js'
import { interruptCounter } from '../interrupts.js'
import { withCliDatabase } from '../with-database.js'

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const ss = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`
}

/** One progress rendering: a bar on a terminal, a plain line otherwise. */
export function progressLine(p: ImportProgress, tty: boolean): string {
  const share =
    p.totalBytes && p.bytesRead !== null ? Math.min(1, p.bytesRead / p.totalBytes) : null
  const eta = p.etaSeconds === null ? '?' : duration(p.etaSeconds)
  const text = `${fmt(p.read)} rows read, ${fmt(p.loaded)} loaded, ${fmt(p.rejected)} rejected · ${fmt(p.rowsPerSec)} rows/s · ETA ${eta}`
  if (!tty) return `progress: ${share === null ? '' : `${(share * 100).toFixed(1)}% `}${text}`
  const width = 24
  const filled = share === null ? 0 : Math.round(share * width)
  const bar =
    share === null
      ? ''
      : `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}% `
  return `${bar}${text}`
}

export function summary(r: ImportResult): string {
  const c = r.counts
  const lines = [
    `${r.status}: read ${fmt(c.read)} = loaded ${fmt(c.loaded)} + rejected ${fmt(c.rejected)} + skipped ${fmt(c.skipped)} in ${(r.elapsedMs / 1000).toFixed(1)} s (${fmt(r.rowsPerSec)} rows/s)`,
  ]
  // A failure with a code is reported on stderr (failureLine), not twice.
  if (r.reason && !(r.status === 'failed' && failureCode(r.reason)))
    lines.push(`reason: ${r.reason}`)
  if (c.rejected > 0 && r.rejectFile) lines.push(`rejected rows: ${r.rejectFile}`)
  if ((r.status === 'paused' || r.status === 'failed') && r.resumable)
    lines.push(`resume with: strata import --resume ${r.jobId}`)
  return lines.join('\n')
}

/** The stderr line of a run that failed on a coded error: `error STRATA_…: message`. */
export function failureLine(r: ImportResult): string | undefined {
  if (r.status !== 'failed') return undefined
  const code = failureCode(r.reason)
  return code ? `error ${r.reason}` : undefined
}

/**
 * 0 all rows loaded, 2 completed with rejects, 130 paused by Ctrl-C (128 + SIGINT, what a shell
 * and `npm run` report for an interrupted command anyway), 1 failed, paused or cancelled
 * otherwise (docs/reference/cli.md).
 */
export function exitCode(r: ImportResult, interrupted = false): number {
  if (interrupted && r.status === 'paused') return 130
  if (r.status !== 'completed') return 1
  return r.counts.rejected > 0 ? 2 : 0
}

export const importCommand: Command = {
  name: 'import',
  summary: 'import a CSV/NDJSON file (or a query) into a table, resumable, exactly once',
  usage: `strata import <spec.json> [--file <path>] [--quiet]
strata import --resume <jobId> [--max-error-rate <0..1>]
strata import --status <jobId> | --pause <jobId> | --cancel <jobId>

Runs the import in this process against DATABASE_URL: prints the job id first, then progress
(a bar on a terminal, plain lines otherwise) and a summary. Relative paths in the spec resolve
against the spec file's folder; --file replaces source.path (relative to the current folder).
Ctrl-C pauses the job within a second (the batch being written commits, nothing more is read);
--resume continues a paused or killed job.
Exit code: 0 all rows loaded, 2 completed with rejected rows, 130 paused by Ctrl-C, 1 failed,
paused (error threshold, --pause) or cancelled. See docs/reference/cli.md.`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        file: { type: 'string' },
        resume: { type: 'string' },
        status: { type: 'string' },
        pause: { type: 'string' },
        cancel: { type: 'string' },
        quiet: { type: 'boolean', default: false },
        'max-error-rate': { type: 'string' },
      },
    })
    const specPath = positionals[0]
    const control = values.status ?? values.pause ?? values.cancel
    if (!specPath && !values.resume && !control) {
      process.stderr.write(
        `strata import: a spec file or --resume <jobId> is required\n${this.usage}\n`,
      )
      return 1
    }
    let spec: unknown
    if (specPath && !values.resume) {
      try {
        spec = JSON.parse(await readFile(specPath, 'utf8'))
      } catch (err) {
        process.stderr.write(
          `strata import: cannot read spec ${specPath}: ${(err as Error).message}\n`,
        )
        return 1
      }
    }
    let maxErrorRate: number | undefined
    if (values['max-error-rate'] !== undefined) {
      maxErrorRate = Number(values['max-error-rate'])
      if (!(maxErrorRate >= 0 && maxErrorRate <= 1)) {
        process.stderr.write('strata import: --max-error-rate must be a number between 0 and 1\n')
        return 1
      }
    }
    return withCliDatabase(async ({ logger, database }) => {
      try {
        await migrate(database.db, [importerMigrations], { logger })
        if (control) {
          const job = values.status
            ? await getImportJob(database.db, control)
            : await requestJobAction(database.db, control, values.pause ? 'pause' : 'cancel')
          process.stdout.write(`${JSON.stringify(job, null, 2)}\n`)
          return 0
        }
        const tty = process.stdout.isTTY === true
        let jobId: string | undefined
        let interrupted = 0
        const press = interruptCounter()
        const pause = new AbortController()
        const onSigint = (): void => {
          // A copy of the same Ctrl-C (forwarded by npm) is not a request to quit now.
          const n = press()
          if (n === undefined) return
          interrupted = n
          if (interrupted > 1 || !jobId) process.exit(130)
          process.stderr.write(
            '\npausing: finishing the batch being written (Ctrl-C again to quit now)…\n',
          )
          pause.abort()
        }
        process.on('SIGINT', onSigint)
        const onJob = (id: string): void => {
          jobId = id
          process.stdout.write(`job ${id}\n`)
        }
        const onProgress = (p: ImportProgress): void => {
          if (values.quiet) return
          if (tty) process.stdout.write(`\r\x1b[2K${progressLine(p, true)}`)
          else process.stdout.write(`${progressLine(p, false)}\n`)
        }
        const opts = {
          logger,
          onJob,
          onProgress,
          signal: pause.signal,
          ...(maxErrorRate !== undefined ? { maxErrorRate } : {}),
        }
        let result: ImportResult
        try {
          result = values.resume
            ? await resumeImport(database.db, values.resume, opts)
            : await runImport(database.db, spec, {
                ...opts,
                baseDir: dirname(resolve(specPath!)),
                ...(values.file ? { file: resolve(values.file) } : {}),
              })
        } finally {
          process.off('SIGINT', onSigint)
        }
        if (tty && !values.quiet) process.stdout.write('\n')
        process.stdout.write(`${summary(result)}\n`)
        const failed = failureLine(result)
        if (failed) process.stderr.write(`${failed}\n`)
        return exitCode(result, interrupted > 0)
      } catch (err) {
        if (importErrors.is(err)) {
          const field = (err.details as { field?: string } | undefined)?.field
          process.stderr.write(
            `strata import: ${err.code}: ${err.message}${field && !err.message.includes(field) ? ` (${field})` : ''}\n`,
          )
          return 1
        }
        throw err
      }
    })
  },
}

import type { ImportJob } from '../api/types.js'
import { jobActions } from '../lib/import-progress.js'

/** A job as the API shows it: `resumable` is false when a resume would fail the same way. */
export type ImportJobView = ImportJob & { resumable?: boolean }

/** The actions the imports page offers: no resume for a job that failed on an error of its spec. */
export function offeredActions(job: ImportJobView): ('pause' | 'resume' | 'cancel')[] {
  return jobActions(job).filter((a) => a !== 'resume' || job.resumable !== false)
}

import type { ImportJob } from '../api/types.js'

/**
 * A job's progress as a fraction 0–1, or null when it cannot be known (a running job whose
 * source size is unknown): bytes read of the source's size, 1 once completed.
 */
export function importProgress(job: ImportJob): number | null {
  if (job.status === 'completed') return 1
  if (job.totalBytes && job.totalBytes > 0 && job.bytesRead !== null)
    return Math.min(1, Math.max(0, job.bytesRead / job.totalBytes))
  return job.status === 'queued' ? 0 : null
}

/** Jobs still moving: the page polls quickly while there are any. */
export function isActive(job: ImportJob): boolean {
  return job.status === 'queued' || job.status === 'running'
}

/** What can be asked of a job in its status. */
export function jobActions(job: ImportJob): ('pause' | 'resume' | 'cancel')[] {
  switch (job.status) {
    case 'running':
      return job.requested ? [] : ['pause', 'cancel']
    case 'queued':
      return ['pause', 'cancel']
    case 'paused':
    case 'failed':
      return ['resume', 'cancel']
    default:
      return []
  }
}

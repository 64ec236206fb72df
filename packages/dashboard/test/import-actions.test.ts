import { describe, expect, it } from 'vitest'
import type { ImportJob } from '../src/api/types.js'
import { offeredActions } from '../src/pages/import-actions.js'

const job = (over: Partial<ImportJob> & { resumable?: boolean }): ImportJob => ({
  id: '00000000-0000-4000-8000-000000000001',
  status: 'failed',
  requested: null,
  reason: null,
  spec: null,
  counts: { read: 0, loaded: 0, rejected: 0, skipped: 0 },
  totalBytes: null,
  bytesRead: null,
  throughputRps: null,
  errorRate: 0,
  elapsedMs: 0,
  createdAt: '2026-11-29T00:00:00Z',
  startedAt: null,
  updatedAt: '2026-11-29T00:00:00Z',
  finishedAt: null,
  ...over,
})

describe('import job actions on the imports page', () => {
  it('offers no resume for a job failed on a spec error (resumable: false)', () => {
    expect(
      offeredActions(
        job({ reason: 'STRATA_IMPORT_INVALID_SPEC: import spec: …', resumable: false }),
      ),
    ).toEqual(['cancel'])
  })

  it('still offers resume for transient failures and paused jobs', () => {
    expect(offeredActions(job({ resumable: true }))).toEqual(['resume', 'cancel'])
    expect(offeredActions(job({ status: 'paused', resumable: true }))).toEqual(['resume', 'cancel'])
    // A server without the field: as before.
    expect(offeredActions(job({}))).toEqual(['resume', 'cancel'])
  })
})

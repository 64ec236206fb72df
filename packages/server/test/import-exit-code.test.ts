import { describe, expect, it } from 'vitest'
import type { ImportResult } from '@strata/importer'
import { exitCode } from '../src/cli/commands/import.js'

const result = (status: ImportResult['status'], rejected = 0): ImportResult => ({
  jobId: 'j',
  status,
  reason: null,
  counts: { read: 10, loaded: 10 - rejected, rejected, skipped: 0 },
  elapsedMs: 1,
  rowsPerSec: 1,
  rejectFile: null,
  resumable: status === 'paused' || status === 'failed',
})

describe('strata import exit code (docs/reference/cli.md)', () => {
  it('is 130 for a job paused by Ctrl-C, as through npm run, and 1 for other pauses', () => {
    expect(exitCode(result('paused'), true)).toBe(130)
    expect(exitCode(result('paused'))).toBe(1)
    expect(exitCode(result('failed'), true)).toBe(1)
    expect(exitCode(result('completed'))).toBe(0)
    expect(exitCode(result('completed', 2))).toBe(2)
    expect(exitCode(result('completed'), true)).toBe(0)
  })
})

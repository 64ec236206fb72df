import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createImportJob, getImportJob, importErrors } from '@strata/importer'
import { advanceCheckpoint, claimJob, renewLease } from '../src/job-store.js'
import { importerTestEnv, type ImporterTestEnv } from './support/importer-db.js'

let env: ImporterTestEnv
beforeAll(async () => {
  env = await importerTestEnv('implease', 'CREATE TABLE t (id int NOT NULL)')
})
afterAll(async () => env?.close())

const delta = {
  records: 1,
  line: 2,
  read: 1,
  loaded: 1,
  rejected: 0,
  skipped: 0,
  batchSize: 1,
  bytesRead: null,
  throughputRps: 0,
  elapsedMs: 1,
}

describe('run lease', () => {
  it('a live lease cannot be taken over; once it passed, exactly one of several racing claims wins and the old run is fenced out', async () => {
    const path = env.file('lease.csv', 'id\n1\n')
    const id = await createImportJob(env.db, {
      source: { format: 'csv', path, header: true },
      target: { table: 't', mode: 'insert' },
      columns: { id: { from: 'id', type: 'int' } },
    })
    const first = await claimJob(env.db, id, ['queued'], { leaseMs: 400 })
    // Renewed while alive: a takeover claim is refused.
    expect(await renewLease(env.db, id, first.token, 400)).toBe(true)
    await expect(
      claimJob(env.db, id, ['running'], { leaseMs: 400, expiredOnly: true }),
    ).rejects.toSatisfy((e) => importErrors.is(e, 'STRATA_IMPORT_JOB_NOT_RESUMABLE'))

    // The runner stops renewing (its process died): five instances race for the job.
    await new Promise((r) => setTimeout(r, 600))
    const claims = await Promise.allSettled(
      Array.from({ length: 5 }, () =>
        claimJob(env.db, id, ['running'], { leaseMs: 10_000, expiredOnly: true }),
      ),
    )
    const won = claims.filter((c) => c.status === 'fulfilled')
    expect(won).toHaveLength(1)
    expect((await getImportJob(env.db, id)).runs).toBe(2)

    // The old runner, should it wake up: no lease, no checkpoint.
    expect(await renewLease(env.db, id, first.token, 400)).toBe(false)
    await expect(
      env.db.transaction((tx) => advanceCheckpoint(tx, id, first.token, delta)),
    ).rejects.toSatisfy((e) => importErrors.is(e, 'STRATA_IMPORT_JOB_TAKEN_OVER'))
  })
})

// Uploaded import files are deleted once no job needs them: at once for a completed or
// cancelled job, after STRATA_IMPORT_UPLOAD_RETENTION for a failed or paused one (so it can
// resume meanwhile); leftovers of earlier runs go at the next start.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createImportJob, importerMigrations } from '@strata/importer'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../src/app.js'
import { defaultConfig, loadConfig } from '../src/config.js'
import { testApp, type TestApp } from './support/test-app.js'

const TOKEN = 'operator-token-for-upload-tests'
const RETENTION_MS = 1500
const auth = { authorization: `Bearer ${TOKEN}` }
let fx: TestApp
let app: FastifyInstance
let importDir: string

beforeAll(async () => {
  importDir = mkdtempSync(join(tmpdir(), 'strata-uploads-'))
  mkdirSync(join(importDir, 'in'))
  fx = await testApp('uploads', {
    // These tests poll job status far faster than a person would: not the rate limit's subject.
    config: {
      adminToken: TOKEN,
      importDir,
      importUploadRetentionMs: RETENTION_MS,
      rateLimits: { imports: false },
    },
    migrations: [importerMigrations],
    prepare: async (d) => {
      await d.query(`CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL)`)
      // id 4242 fails its batch with an error no row can be blamed for: the job fails.
      await d.query(`
        CREATE FUNCTION refuse_4242() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.id = 4242 THEN RAISE EXCEPTION 'refused' USING ERRCODE = '42501'; END IF;
          RETURN NEW;
        END $$`)
      await d.query(
        'CREATE TRIGGER refuse_4242 BEFORE INSERT ON people FOR EACH ROW EXECUTE FUNCTION refuse_4242()',
      )
    },
  })
  app = fx.app
})
afterAll(async () => {
  await fx?.close()
  rmSync(importDir, { recursive: true, force: true })
})

const spec = (maxErrorRate = 1) => ({
  source: { format: 'csv', path: 'ignored' },
  target: { table: 'people', key: ['id'] },
  columns: { id: { type: 'int', required: true }, email: { type: 'email', required: true } },
  errors: { maxErrorRate },
})

async function upload(csv: string, maxErrorRate = 1): Promise<{ id: string; file: string }> {
  const res = await app.inject({
    method: 'POST',
    url: `/v1/imports?spec=${encodeURIComponent(JSON.stringify(spec(maxErrorRate)))}`,
    headers: { ...auth, 'content-type': 'text/csv' },
    payload: csv,
  })
  expect(res.statusCode, res.body).toBe(202)
  const job = res.json().job as { id: string; spec: { source: { path: string } } }
  return { id: job.id, file: job.spec.source.path }
}

async function finished(id: string): Promise<{ status: string }> {
  for (let i = 0; i < 400; i++) {
    const job = (
      await app.inject({ method: 'GET', url: `/v1/imports/${id}`, headers: auth })
    ).json().job as { status: string }
    if (!['queued', 'running'].includes(job.status)) return job
    await sleep(25)
  }
  throw new Error(`import ${id} did not finish`)
}

async function eventually(check: () => boolean, ms = 8000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (check()) return true
  return check()
}

describe('import uploads', () => {
  it('a completed job’s upload is deleted when the job ends', async () => {
    const { id, file } = await upload('id,email\n1,a@x.io\n2,b@x.io\n')
    expect(file).toMatch(/\/uploads\/[0-9a-f-]{36}\.csv$/)
    expect(await finished(id)).toMatchObject({ status: 'completed' })
    expect(await eventually(() => !existsSync(file), 2000)).toBe(true)
  })

  it.each([
    ['failed', 'id,email\n3,c@x.io\n4242,d@x.io\n'],
    ['paused (error rate)', 'id,email\n3,c@x.io\n4,not-an-email\n'],
  ])('a %s job’s upload is kept for the retention period, then deleted', async (status, csv) => {
    const { id, file } = await upload(csv, 0)
    expect(await finished(id)).toMatchObject({ status: status.split(' ')[0] })
    const failedAt = Date.now()
    await sleep(300)
    expect(existsSync(file)).toBe(true) // still resumable
    expect(await eventually(() => !existsSync(file))).toBe(true)
    expect(Date.now() - failedAt).toBeGreaterThanOrEqual(RETENTION_MS - 100)
  })

  it('cancelling a failed job deletes its upload at once', async () => {
    const { id, file } = await upload('id,email\n5,e@x.io\n4242,f@x.io\n', 0)
    expect(await finished(id)).toMatchObject({ status: 'failed' })
    expect(existsSync(file)).toBe(true)
    const res = await app.inject({ method: 'POST', url: `/v1/imports/${id}/cancel`, headers: auth })
    expect(res.json().job.status).toBe('cancelled')
    expect(existsSync(file)).toBe(false)
  })

  it('never deletes a server-side source file', async () => {
    const source = join(importDir, 'in', 'people.csv')
    writeFileSync(source, 'id,email\n7,g@x.io\n')
    const res = await app.inject({
      method: 'POST',
      url: '/v1/imports',
      headers: auth,
      payload: { spec: { ...spec(), source: { format: 'csv', path: 'in/people.csv' } } },
    })
    expect(await finished(res.json().job.id)).toMatchObject({ status: 'completed' })
    await sleep(RETENTION_MS + 500)
    expect(existsSync(source)).toBe(true)
  })

  it('on start, deletes what earlier runs left behind (a finished job’s upload), not unknown files', async () => {
    const uploads = join(importDir, 'uploads')
    const left = `${randomUUID()}.csv`
    const stranger = `${randomUUID()}.csv`
    writeFileSync(join(uploads, left), 'id,email\n8,h@x.io\n')
    writeFileSync(join(uploads, stranger), 'id,email\n9,i@x.io\n')
    // A job that completed under a version that kept its upload.
    const jobId = await createImportJob(
      fx.db,
      { ...spec(), source: { format: 'csv', path: `uploads/${left}` } },
      { importDir, baseDir: importDir },
    )
    await fx.db.query(`UPDATE data_import_jobs SET status = 'completed' WHERE id = $1`, [jobId])
    const next = await buildApp(
      defaultConfig({ adminToken: TOKEN, importDir, importUploadRetentionMs: RETENTION_MS }),
      { db: fx.db, logger: pino({ level: 'silent' }) },
    )
    await next.ready()
    try {
      expect(await eventually(() => !existsSync(join(uploads, left)), 3000)).toBe(true)
      expect(existsSync(join(uploads, stranger))).toBe(true)
    } finally {
      await next.close()
    }
  })
})

describe('STRATA_IMPORT_UPLOAD_RETENTION', () => {
  it('defaults to 24 h and takes a duration', () => {
    expect(loadConfig({}).importUploadRetentionMs).toBe(86_400_000)
    expect(loadConfig({ STRATA_IMPORT_UPLOAD_RETENTION: '2h' }).importUploadRetentionMs).toBe(
      7_200_000,
    )
    expect(() => loadConfig({ STRATA_IMPORT_UPLOAD_RETENTION: 'soon' })).toThrow(
      /STRATA_IMPORT_UPLOAD_RETENTION/,
    )
  })
})

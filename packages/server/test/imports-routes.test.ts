import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { importerMigrations } from '@strata/importer'
import type { Database } from '@strata/pg'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../src/app.js'
import { defaultConfig } from '../src/config.js'
import { testApp, type TestApp } from './support/test-app.js'

const TOKEN = 'operator-token-for-import-tests'
let fx: TestApp
let db: Database
let app: FastifyInstance
let importDir: string
let outside: string

beforeAll(async () => {
  importDir = mkdtempSync(join(tmpdir(), 'strata-imprt-'))
  outside = mkdtempSync(join(tmpdir(), 'strata-imprt-out-'))
  writeFileSync(join(outside, 'secret.csv'), 'id,email\n1,a@x.io\n')
  mkdirSync(join(importDir, 'in'))
  symlinkSync(join(outside, 'secret.csv'), join(importDir, 'in', 'link.csv'))
  fx = await testApp('imprt', {
    // These tests poll job status far faster than a person would: not the rate limit's subject.
    config: { adminToken: TOKEN, importDir, rateLimits: { imports: false } },
    migrations: [importerMigrations],
    prepare: (d) =>
      d.query(`CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL)`).then(() => {}),
  })
  ;({ app, db } = fx)
})
afterAll(async () => {
  await fx?.close()
  rmSync(importDir, { recursive: true, force: true })
  rmSync(outside, { recursive: true, force: true })
})

const auth = { authorization: `Bearer ${TOKEN}` }
const spec = (path: string) => ({
  source: { format: 'csv', path },
  target: { table: 'people', key: ['id'] },
  columns: { id: { type: 'int', required: true }, email: { type: 'email', required: true } },
  errors: { maxErrorRate: 1 },
})

/** The app again, with a 64-byte upload limit. */
function smallApp(): Promise<FastifyInstance> {
  return buildApp(defaultConfig({ adminToken: TOKEN, importDir }), {
    db,
    logger: pino({ level: 'silent' }),
    overrides: { imports: { maxUploadBytes: 64 } },
  })
}

async function waitDone(id: string) {
  return waitDoneOn(app, id)
}

async function waitDoneOn(on: FastifyInstance, id: string) {
  for (let i = 0; i < 400; i++) {
    const res = await on.inject({ method: 'GET', url: `/v1/imports/${id}`, headers: auth })
    const job = res.json().job
    if (!['queued', 'running'].includes(job.status)) return job
    await sleep(25)
  }
  throw new Error('import did not finish')
}

/** A multipart/form-data body from [name, value | {filename, type, content}] parts, in order. */
function multipartBody(
  parts: [string, string | { filename: string; type: string; content: string | Buffer }][],
): { payload: Buffer; headers: Record<string, string> } {
  const boundary = '----strata-test-boundary'
  const chunks: Buffer[] = []
  for (const [name, v] of parts) {
    if (typeof v === 'string')
      chunks.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${v}\r\n`,
        ),
      )
    else {
      chunks.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${v.filename}"\r\nContent-Type: ${v.type}\r\n\r\n`,
        ),
        Buffer.from(v.content),
        Buffer.from('\r\n'),
      )
    }
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return {
    payload: Buffer.concat(chunks),
    headers: { ...auth, 'content-type': `multipart/form-data; boundary=${boundary}` },
  }
}

describe('/v1/imports', () => {
  it('needs the operator token', async () => {
    expect((await app.inject({ method: 'GET', url: '/v1/imports/x' })).statusCode).toBe(401)
    expect(
      (
        await app.inject({
          method: 'GET',
          url: '/v1/imports/x',
          headers: { authorization: 'Bearer nope' },
        })
      ).statusCode,
    ).toBe(401)
  })

  it('imports a server-side file, reports the job and serves the rejects as CSV', async () => {
    writeFileSync(join(importDir, 'in', 'people.csv'), 'id,email\n1,a@x.io\n2,bad\n3,c@x.io\n')
    const res = await app.inject({
      method: 'POST',
      url: '/v1/imports',
      headers: auth,
      payload: { spec: spec('in/people.csv') },
    })
    expect(res.statusCode).toBe(202)
    const job = await waitDone(res.json().job.id)
    expect(job).toMatchObject({
      status: 'completed',
      counts: { read: 3, loaded: 2, rejected: 1, skipped: 0 },
    })
    const rejects = await app.inject({
      method: 'GET',
      url: `/v1/imports/${job.id}/rejects`,
      headers: auth,
    })
    expect(rejects.headers['content-type']).toMatch(/^text\/csv/)
    expect(rejects.body).toBe(
      // The same columns as the CLI's reject file: the source's fields after the reject's own.
      'line,column,code,message,id,email\n3,email,STRATA_IMPORT_INVALID_VALUE,"""bad"" is not an email address",2,bad\n',
    )
  })

  it('a job failed on its spec is not resumable: POST resume answers 409', async () => {
    writeFileSync(join(importDir, 'in', 'header.csv'), 'id,email\n1,a@x.io\n')
    const res = await app.inject({
      method: 'POST',
      url: '/v1/imports',
      headers: auth,
      payload: {
        spec: {
          ...spec('in/header.csv'),
          columns: { id: { type: 'int' }, email: { from: 'mail' } },
        },
      },
    })
    expect(res.statusCode).toBe(202)
    const job = await waitDone(res.json().job.id)
    expect(job).toMatchObject({ status: 'failed', resumable: false })
    const resumed = await app.inject({
      method: 'POST',
      url: `/v1/imports/${job.id}/resume`,
      headers: auth,
    })
    expect(resumed.statusCode).toBe(409)
    expect(resumed.json().error.code).toBe('STRATA_IMPORT_JOB_NOT_RESUMABLE')
  })

  it('streams an uploaded file to the import directory', async () => {
    const res = await app.inject({
      method: 'POST',
      url: `/v1/imports?spec=${encodeURIComponent(JSON.stringify(spec('ignored')))}`,
      headers: { ...auth, 'content-type': 'text/csv' },
      payload: 'id,email\n10,u@x.io\n11,v@x.io\n',
    })
    expect(res.statusCode).toBe(202)
    expect(res.json().job.spec.source.path).toMatch(/\/uploads\/[0-9a-f-]{36}\.csv$/)
    const job = await waitDone(res.json().job.id)
    expect(job.counts.loaded).toBe(2)
  })

  it.each([
    ['../secret.csv', 403],
    [`${'/'}etc/passwd`, 403],
    ['in/link.csv', 403],
    ['in/missing.csv', 404],
  ])('refuses source path %j', async (path, status) => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/imports',
      headers: auth,
      payload: { spec: spec(path) },
    })
    expect(res.statusCode).toBe(status)
    expect(res.json().error.code).toMatch(/^STRATA_IMPORT_(PATH_NOT_ALLOWED|SOURCE_NOT_FOUND)$/)
  })

  it('answers 400 naming the field for a bad spec, 404 for an unknown job', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/imports',
      headers: auth,
      payload: { spec: { ...spec('x.csv'), workers: -1 } },
    })
    expect(bad.statusCode).toBe(400)
    expect(bad.json().error).toMatchObject({
      code: 'STRATA_IMPORT_INVALID_SPEC',
      details: { field: 'workers' },
    })
    const missing = await app.inject({
      method: 'GET',
      url: '/v1/imports/00000000-0000-0000-0000-000000000000',
      headers: auth,
    })
    expect(missing.statusCode).toBe(404)
  })

  it('pause and cancel a job; resume a paused one', async () => {
    const lines = ['id,email']
    for (let i = 100; i < 20_100; i++) lines.push(`${i},u${i}@x.io`)
    writeFileSync(join(importDir, 'in', 'big.csv'), lines.join('\n') + '\n')
    const res = await app.inject({
      method: 'POST',
      url: '/v1/imports',
      headers: auth,
      payload: { spec: { ...spec('in/big.csv'), batch: { initial: 100, min: 100, max: 100 } } },
    })
    const id = res.json().job.id as string
    const paused = await app.inject({
      method: 'POST',
      url: `/v1/imports/${id}/pause`,
      headers: auth,
    })
    expect(paused.statusCode).toBe(202)
    const job = await waitDone(id)
    expect(job.status).toBe('paused')
    expect(job.counts.read).toBeLessThan(20_000)
    const resumed = await app.inject({
      method: 'POST',
      url: `/v1/imports/${id}/resume`,
      headers: auth,
    })
    expect(resumed.statusCode).toBe(202)
    expect(await waitDone(id)).toMatchObject({
      status: 'completed',
      counts: { read: 20_000, loaded: 20_000 },
    })
    const cancel = await app.inject({
      method: 'POST',
      url: `/v1/imports/${id}/cancel`,
      headers: auth,
    })
    expect(cancel.json().job.status).toBe('completed') // nothing to cancel any more
    const again = await app.inject({
      method: 'POST',
      url: `/v1/imports/${id}/resume`,
      headers: auth,
    })
    expect(again.statusCode).toBe(409)
  })

  it('refuses an upload above the size limit and keeps no partial file', async () => {
    const small = await smallApp()
    const uploads = join(importDir, 'uploads')
    // Compared by name: finished jobs' uploads are deleted in the background meanwhile.
    const before = new Set(readdirSync(uploads))
    const res = await small.inject({
      method: 'POST',
      url: `/v1/imports?spec=${encodeURIComponent(JSON.stringify(spec('ignored')))}`,
      headers: { ...auth, 'content-type': 'text/csv' },
      payload: 'id,email\n' + '1,a@x.io\n'.repeat(20),
    })
    expect(res.statusCode).toBe(413)
    expect(res.json().error.code).toBe('STRATA_IMPORT_UPLOAD_TOO_LARGE')
    expect(readdirSync(uploads).filter((f) => !before.has(f))).toEqual([])
    await small.close()
  })
  describe('multipart/form-data uploads', () => {
    const csv = { filename: 'people.csv', type: 'text/csv' }
    const uploads = () => readdirSync(join(importDir, 'uploads'))
    // Files stored since `before`: finished jobs' uploads are deleted in the background, so a
    // count could drop while the test runs.
    const added = (before: Set<string>) => uploads().filter((f) => !before.has(f))

    it.each([
      ['spec field first', 'spec-first'],
      ['file part first', 'file-first'],
    ])('streams the file part to the import directory (%s)', async (_name, order) => {
      const base = order === 'spec-first' ? 20 : 30
      const file: [string, { filename: string; type: string; content: string }] = [
        'file',
        { ...csv, content: `id,email\n${base},a${base}@x.io\n${base + 1},b${base}@x.io\n` },
      ]
      const specPart: [string, string] = ['spec', JSON.stringify(spec('ignored'))]
      const body = multipartBody(order === 'spec-first' ? [specPart, file] : [file, specPart])
      const res = await app.inject({ method: 'POST', url: '/v1/imports', ...body })
      expect(res.statusCode).toBe(202)
      expect(res.json().job.spec.source.path).toMatch(/\/uploads\/[0-9a-f-]{36}\.csv$/)
      const job = await waitDone(res.json().job.id)
      expect(job).toMatchObject({ status: 'completed', counts: { read: 2, loaded: 2 } })
      const rows = await db.query<{ id: number }>(
        'SELECT id FROM people WHERE id IN ($1, $2) ORDER BY id',
        [base, base + 1],
      )
      expect(rows.rows.map((r) => r.id)).toEqual([base, base + 1])
    })

    it('is not held to the 1 MiB JSON body limit', async () => {
      const lines = ['id,email']
      for (let i = 0; i < 50_000; i++) lines.push(`${1000 + i},u${i}@example.org`)
      const content = lines.join('\n') + '\n'
      expect(content.length).toBeGreaterThan(1024 * 1024)
      const body = multipartBody([
        [
          'spec',
          JSON.stringify({
            ...spec('ignored'),
            target: { table: 'people', mode: 'skip-existing', key: ['id'] },
          }),
        ],
        ['file', { ...csv, content }],
      ])
      const res = await app.inject({ method: 'POST', url: '/v1/imports', ...body })
      expect(res.statusCode).toBe(202)
      const id = res.json().job.id as string
      await app.inject({ method: 'POST', url: `/v1/imports/${id}/cancel`, headers: auth })
      await waitDone(id)
    })

    it('answers 400 for a bad spec (invalid JSON, invalid field, none) and keeps no file', async () => {
      const before = new Set(uploads())
      const file: [string, { filename: string; type: string; content: string }] = [
        'file',
        { ...csv, content: 'id,email\n1,a@x.io\n' },
      ]
      const notJson = await app.inject({
        method: 'POST',
        url: '/v1/imports',
        ...multipartBody([file, ['spec', '{not json']]),
      })
      expect(notJson.statusCode).toBe(400)
      expect(notJson.json().error.code).toBe('STRATA_BAD_REQUEST')
      const badField = await app.inject({
        method: 'POST',
        url: '/v1/imports',
        ...multipartBody([['spec', JSON.stringify({ ...spec('x'), workers: -1 })], file]),
      })
      expect(badField.statusCode).toBe(400)
      expect(badField.json().error).toMatchObject({
        code: 'STRATA_IMPORT_INVALID_SPEC',
        details: { field: 'workers' },
      })
      const unknownTable = await app.inject({
        method: 'POST',
        url: '/v1/imports',
        ...multipartBody([
          file,
          ['spec', JSON.stringify({ ...spec('x'), target: { table: 'no_such_table' } })],
        ]),
      })
      expect(unknownTable.statusCode).toBeGreaterThanOrEqual(400)
      expect(unknownTable.statusCode).toBeLessThan(500)
      const noSpec = await app.inject({
        method: 'POST',
        url: '/v1/imports',
        ...multipartBody([file]),
      })
      expect(noSpec.statusCode).toBe(400)
      const noFile = await app.inject({
        method: 'POST',
        url: '/v1/imports',
        ...multipartBody([['spec', JSON.stringify(spec('x'))]]),
      })
      expect(noFile.statusCode).toBe(400)
      expect(added(before)).toEqual([])
    })

    it('refuses a file part above the size limit and keeps no partial file', async () => {
      const small = await smallApp()
      const before = new Set(uploads())
      const res = await small.inject({
        method: 'POST',
        url: '/v1/imports',
        ...multipartBody([
          ['spec', JSON.stringify(spec('ignored'))],
          ['file', { ...csv, content: 'id,email\n' + '1,a@x.io\n'.repeat(20) }],
        ]),
      })
      expect(res.statusCode).toBe(413)
      expect(res.json().error.code).toBe('STRATA_IMPORT_UPLOAD_TOO_LARGE')
      expect(added(before)).toEqual([])
      // Exactly at the limit is accepted (blank lines are skipped by the CSV reader).
      const exact = 'id,email\n7,a@x.io\n'.padEnd(64, '\n')
      const ok = await small.inject({
        method: 'POST',
        url: '/v1/imports',
        ...multipartBody([
          ['spec', JSON.stringify(spec('ignored'))],
          ['file', { ...csv, content: exact }],
        ]),
      })
      expect(ok.statusCode).toBe(202)
      expect(await waitDoneOn(small, ok.json().job.id)).toMatchObject({ counts: { loaded: 1 } })
      await small.close()
    })
  })
})

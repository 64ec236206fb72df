import { once } from 'node:events'
import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Transform } from 'node:stream'
import multipart from '@fastify/multipart'
import { decodeKeysetCursor, encodeKeysetCursor } from '@strata/core'
import { ProjectStore } from '@strata/events'
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
  validateSpec,
  type ImportJob,
  type ImportResult,
  type JobListCursor,
  type JobStatus,
} from '@strata/importer'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { serverErrors } from '../../errors.js'
import { requirePrincipal } from '../../plugins/auth.js'

export interface ImportRoutesOptions {
  /** Largest accepted upload. @defaultValue importDefaults.maxUploadBytes (1 GiB) */
  maxUploadBytes?: number
}

// Upload bodies are streamed to disk, never buffered: these types arrive as a raw stream.
const UPLOAD_TYPES = [
  'text/csv',
  'application/x-ndjson',
  'application/gzip',
  'application/octet-stream',
]
const EXT: Record<string, string> = {
  'text/csv': '.csv',
  'application/x-ndjson': '.ndjson',
  'application/gzip': '.gz',
  'application/octet-stream': '.bin',
}

const JOB_STATUSES: readonly JobStatus[] = [
  'queued',
  'running',
  'paused',
  'failed',
  'cancelled',
  'completed',
]
const LIST_MAX = 200
function invalidParameter(parameter: string, message: string): never {
  throw serverErrors.create('STRATA_VALIDATION_FAILED', { message, details: { parameter } })
}

function encodeJobCursor(c: JobListCursor): string {
  return encodeKeysetCursor({ ts: c.createdAt, id: c.id })
}

function parseJobCursor(value: string): JobListCursor {
  const c = decodeKeysetCursor(value)
  if (!c) return invalidParameter('cursor', 'cursor must be a nextCursor from a previous page')
  return { createdAt: c.ts, id: c.id }
}

function view(job: ImportJob): Record<string, unknown> {
  const { baseDir: _baseDir, ...rest } = job
  return rest
}

/**
 * `/v1/imports` (operator token: an import writes to any table). POST takes either a JSON body
 * `{"spec": {...}}` whose source.path is a server-side file inside STRATA_IMPORT_DIR, or the file
 * itself as the body (text/csv, application/x-ndjson, application/gzip,
 * application/octet-stream) with the spec as the `spec` query parameter (JSON), or
 * multipart/form-data with a `spec` field (JSON) and a `file` part; uploads are streamed to
 * STRATA_IMPORT_DIR/uploads with a size limit. The job runs in this process in the background;
 * the answer (202) carries its id.
 */
export default async function importRoutes(
  app: FastifyInstance,
  opts: ImportRoutesOptions = {},
): Promise<void> {
  const auth = requirePrincipal(
    { store: new ProjectStore(app.db), adminToken: app.config.adminToken },
    { operator: true },
  )
  const importDir = app.config.importDir
  const maxUpload = opts.maxUploadBytes ?? importDefaults.maxUploadBytes
  const running = new Map<string, Promise<ImportResult | undefined>>()

  for (const type of UPLOAD_TYPES)
    app.addContentTypeParser(type, (_req, payload, done) => done(null, payload))
  // Registered in this plugin only (encapsulated): parts are read as streams in the handler.
  // The file limit is one byte above ours so that saveUpload's own check (and error) fires.
  await app.register(multipart, {
    limits: { fileSize: maxUpload + 1, files: 1, fields: 4, fieldSize: 1024 * 1024, parts: 5 },
  })

  /** Runs the job in the background; resolves once it is claimed (status running) or ended. */
  function start(jobId: string): Promise<void> {
    if (running.has(jobId)) return Promise.resolve()
    let claimed!: () => void
    const started = new Promise<void>((r) => (claimed = r))
    const p = runImportJob(app.db, jobId, { importDir, logger: app.log, onJob: () => claimed() })
      .catch((err: unknown) => {
        app.log.error({ err, jobId }, 'import job failed to run')
        return undefined
      })
      .finally(() => {
        running.delete(jobId)
        claimed()
      })
    running.set(jobId, p)
    return started
  }

  // On shutdown, running jobs pause at their next batch boundary (resumable), then we wait.
  app.addHook('onClose', async () => {
    await Promise.all(
      [...running.keys()].map((id) => requestJobAction(app.db, id, 'pause').catch(() => {})),
    )
    await Promise.race([
      Promise.all(running.values()),
      new Promise((r) => setTimeout(r, 10_000).unref()),
    ])
  })

  async function saveUpload(body: Readable, contentType: string, ext?: string): Promise<string> {
    const dir = join(importDir, 'uploads')
    await mkdir(dir, { recursive: true })
    const name = `${randomUUID()}${ext ?? EXT[contentType] ?? '.bin'}`
    const path = join(dir, name)
    let size = 0
    const limiter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length
        if (size > maxUpload)
          cb(
            importErrors.create('STRATA_IMPORT_UPLOAD_TOO_LARGE', {
              message: `The upload is larger than ${maxUpload} bytes`,
            }),
          )
        else cb(null, chunk)
      },
    })
    const out = createWriteStream(path)
    try {
      await pipeline(body, limiter, out)
    } catch (err) {
      // The file may still be opening when the pipeline fails: unlinking before it closes would
      // run first and leave an empty file behind.
      if (!out.closed) await once(out, 'close').catch(() => {})
      await unlink(path).catch(() => {})
      throw err
    }
    return join('uploads', name)
  }

  /** Parses and checks the spec of an upload (its source.path is set once the file is stored). */
  function uploadSpec(json: string | undefined, where: string): Record<string, unknown> {
    let parsed: unknown
    try {
      parsed = JSON.parse(json ?? '')
    } catch {
      throw serverErrors.create('STRATA_BAD_REQUEST', {
        message: `An upload needs the import spec as ${where} (JSON)`,
      })
    }
    const source = (parsed as { source?: Record<string, unknown> })?.source
    validateSpec({ ...(parsed as object), source: { ...source, path: 'upload' } })
    return parsed as Record<string, unknown>
  }
  const withPath = (spec: Record<string, unknown>, path: string): Record<string, unknown> => ({
    ...spec,
    source: { ...(spec.source as object), path },
  })

  /**
   * multipart/form-data: a `spec` field and one `file` part, in either order. The file is
   * streamed to disk as it arrives; a spec after the file is checked then, and the stored file
   * removed if the request fails.
   */
  async function multipartSpec(request: FastifyRequest): Promise<Record<string, unknown>> {
    let spec: Record<string, unknown> | undefined
    let path: string | undefined
    try {
      for await (const part of request.parts()) {
        if (part.type === 'field') {
          if (part.fieldname !== 'spec') continue
          if (spec)
            throw serverErrors.create('STRATA_BAD_REQUEST', { message: 'More than one spec field' })
          spec = uploadSpec(
            typeof part.value === 'string' ? part.value : undefined,
            'the `spec` field',
          )
        } else {
          if (part.fieldname !== 'file' || path) {
            part.file.resume()
            throw serverErrors.create('STRATA_BAD_REQUEST', {
              message: 'A multipart import takes one file part, named `file`',
            })
          }
          const m = /\.(csv|ndjson|jsonl|gz|json|txt)$/i.exec(part.filename ?? '')
          path = await saveUpload(
            part.file,
            part.mimetype,
            m ? `.${m[1]!.toLowerCase()}` : undefined,
          )
        }
      }
      if (!spec)
        throw serverErrors.create('STRATA_BAD_REQUEST', {
          message: 'A multipart import needs a `spec` field (JSON)',
        })
      if (!path)
        throw serverErrors.create('STRATA_BAD_REQUEST', {
          message: 'A multipart import needs a `file` part',
        })
      return withPath(spec, path)
    } catch (err) {
      if (path) await unlink(join(importDir, path)).catch(() => {})
      throw err
    }
  }

  app.post<{ Querystring: { spec?: string }; Body: unknown }>(
    '/v1/imports',
    { preValidation: auth, bodyLimit: 1024 * 1024 },
    async (request, reply) => {
      const type = String(request.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim()
        .toLowerCase()
      let spec: Record<string, unknown>
      /** The stored upload (relative to the import dir); never a server-side source file. */
      let uploaded: string | undefined
      if (type === 'multipart/form-data') {
        spec = await multipartSpec(request)
        uploaded = (spec.source as { path: string }).path
      } else if (UPLOAD_TYPES.includes(type)) {
        // Validated before storing the file, so a bad spec does not cost an upload.
        const parsed = uploadSpec(request.query.spec, 'the `spec` query parameter')
        uploaded = await saveUpload(request.body as Readable, type)
        spec = withPath(parsed, uploaded)
      } else {
        const body = request.body as { spec?: unknown } | undefined
        if (!body || typeof body !== 'object' || typeof body.spec !== 'object')
          throw serverErrors.create('STRATA_BAD_REQUEST', {
            message: 'Body must be {"spec": {...}}',
          })
        spec = body.spec as Record<string, unknown>
      }
      let jobId: string
      try {
        jobId = await createImportJob(app.db, spec, { importDir, baseDir: importDir })
      } catch (err) {
        // A spec the catalog refuses (unknown table or column): the upload is of no use.
        if (uploaded) await unlink(join(importDir, uploaded)).catch(() => {})
        throw err
      }
      await start(jobId)
      return reply.code(202).send({ job: view(await getImportJob(app.db, jobId)) })
    },
  )

  // Newest first; `{"items":[…],"nextCursor":…|null}` like every list endpoint.
  app.get<{ Querystring: Record<string, string | string[] | undefined> }>(
    '/v1/imports',
    { preValidation: auth },
    async (request) => {
      // A repeated parameter arrives as an array: one comma list for status, else invalid.
      const one = (name: string): string | undefined => {
        const v = request.query[name]
        if (Array.isArray(v)) {
          if (name === 'status') return v.join(',')
          invalidParameter(name, `${name} must be given once`)
        }
        return v
      }
      const q = { limit: one('limit'), cursor: one('cursor'), status: one('status') }
      let limit = 50
      if (q.limit !== undefined && q.limit !== '') {
        limit = Number(q.limit)
        if (!Number.isInteger(limit) || limit < 1)
          invalidParameter('limit', 'limit must be a positive integer')
      }
      const status =
        q.status === undefined || q.status === ''
          ? undefined
          : q.status.split(',').map((s) => {
              if (!JOB_STATUSES.includes(s.trim() as JobStatus))
                invalidParameter('status', `status must be among ${JOB_STATUSES.join(', ')}`)
              return s.trim() as JobStatus
            })
      const page = await listJobs(app.db, {
        limit: Math.min(limit, LIST_MAX),
        after: q.cursor ? parseJobCursor(q.cursor) : null,
        ...(status ? { status } : {}),
      })
      return {
        items: page.items.map(view),
        nextCursor: page.next ? encodeJobCursor(page.next) : null,
      }
    },
  )

  app.get<{ Params: { id: string } }>(
    '/v1/imports/:id',
    { preValidation: auth },
    async (request) => ({
      job: view(await getImportJob(app.db, request.params.id)),
    }),
  )

  app.get<{ Params: { id: string } }>(
    '/v1/imports/:id/rejects',
    { preValidation: auth },
    async (request, reply) => {
      await getImportJob(app.db, request.params.id)
      const rejects = await listRejects(app.db, request.params.id)
      reply.type('text/csv; charset=utf-8')
      return rejectHeader(undefined) + rejects.map(rejectLine).join('')
    },
  )

  for (const action of ['pause', 'cancel'] as const)
    app.post<{ Params: { id: string } }>(
      `/v1/imports/:id/${action}`,
      { preValidation: auth },
      async (request, reply) =>
        reply
          .code(202)
          .send({ job: view(await requestJobAction(app.db, request.params.id, action)) }),
    )

  app.post<{ Params: { id: string } }>(
    '/v1/imports/:id/resume',
    { preValidation: auth },
    async (request, reply) => {
      let job = await getImportJob(app.db, request.params.id)
      // A run that already recorded its pause may still be closing its source: let it finish.
      if (job.status !== 'running' && running.has(job.id)) {
        await running.get(job.id)
        job = await getImportJob(app.db, request.params.id)
      }
      if (running.has(job.id) || !['paused', 'failed', 'queued', 'running'].includes(job.status))
        throw importErrors.create('STRATA_IMPORT_JOB_NOT_RESUMABLE', {
          message: `Import job ${job.id} is ${running.has(job.id) ? 'running in this instance' : job.status}`,
        })
      await start(job.id)
      return reply.code(202).send({ job: view(await getImportJob(app.db, job.id)) })
    },
  )
}

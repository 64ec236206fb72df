import multipart from '@fastify/multipart'
import type { ImportJob } from '@strata/importer'
import type { FastifyInstance } from 'fastify'
import { encodeJobCursor, parseJobListQuery } from '../../http/import-list.js'
import { readImportRequest, UPLOAD_TYPES } from '../../http/import-upload.js'

/** A job as the API shows it (the server-side base dir left out). */
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
export default async function importRoutes(app: FastifyInstance): Promise<void> {
  const imports = app.services.imports
  const auth = app.requirePrincipal({ operator: true })

  for (const type of UPLOAD_TYPES)
    app.addContentTypeParser(type, (_req, payload, done) => done(null, payload))
  // Registered in this plugin only (encapsulated): parts are read as streams in the handler.
  // The file limit is one byte above ours so that the upload store's own check (and error) fires.
  await app.register(multipart, {
    limits: {
      fileSize: imports.uploads.maxBytes + 1,
      files: 1,
      fields: 4,
      fieldSize: 1024 * 1024,
      parts: 5,
    },
  })

  app.post<{ Querystring: { spec?: string }; Body: unknown }>(
    '/v1/imports',
    { preValidation: auth, bodyLimit: 1024 * 1024 },
    async (request, reply) => {
      const { spec, uploaded } = await readImportRequest(request, imports.uploads)
      return reply.code(202).send({ job: view(await imports.create(spec, uploaded)) })
    },
  )

  // Newest first; `{"items":[…],"nextCursor":…|null}` like every list endpoint.
  app.get<{ Querystring: Record<string, string | string[] | undefined> }>(
    '/v1/imports',
    { preValidation: auth },
    async (request) => {
      const page = await imports.list(parseJobListQuery(request.query))
      return {
        items: page.items.map(view),
        nextCursor: page.next ? encodeJobCursor(page.next) : null,
      }
    },
  )

  app.get<{ Params: { id: string } }>(
    '/v1/imports/:id',
    { preValidation: auth },
    async (request) => ({ job: view(await imports.get(request.params.id)) }),
  )

  app.get<{ Params: { id: string } }>(
    '/v1/imports/:id/rejects',
    { preValidation: auth },
    async (request, reply) => {
      const csv = await imports.rejectsCsv(request.params.id)
      reply.type('text/csv; charset=utf-8')
      return csv
    },
  )

  for (const action of ['pause', 'cancel'] as const)
    app.post<{ Params: { id: string } }>(
      `/v1/imports/:id/${action}`,
      { preValidation: auth },
      async (request, reply) =>
        reply.code(202).send({ job: view(await imports.requestAction(request.params.id, action)) }),
    )

  app.post<{ Params: { id: string } }>(
    '/v1/imports/:id/resume',
    { preValidation: auth },
    async (request, reply) =>
      reply.code(202).send({ job: view(await imports.resume(request.params.id)) }),
  )
}

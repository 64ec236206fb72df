import type { Readable } from 'node:stream'
import { validateSpec } from '@strata/importer'
import type { FastifyRequest } from 'fastify'
import { serverErrors } from '../errors.js'
import type { UploadStore } from '../imports/upload-store.js'

// Upload bodies are streamed to disk, never buffered: these types arrive as a raw stream.
export const UPLOAD_TYPES = [
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

/** What a POST /v1/imports carried: the spec, and the stored upload when there was one. */
export interface ImportRequest {
  spec: Record<string, unknown>
  /** The stored upload (relative to the import dir); never a server-side source file. */
  uploaded?: string
}

/**
 * Reads the spec (and file) of POST /v1/imports, by Content-Type: multipart/form-data (a
 * `spec` field and a `file` part), a raw upload type with `?spec=`, or JSON `{"spec": {...}}`.
 */
export async function readImportRequest(
  request: FastifyRequest<{ Querystring: { spec?: string } }>,
  uploads: UploadStore,
): Promise<ImportRequest> {
  const type = String(request.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
    .toLowerCase()
  if (type === 'multipart/form-data') {
    const spec = await multipartSpec(request, uploads)
    return { spec, uploaded: (spec.source as { path: string }).path }
  }
  if (UPLOAD_TYPES.includes(type)) {
    // Validated before storing the file, so a bad spec does not cost an upload.
    const parsed = uploadSpec(request.query.spec, 'the `spec` query parameter')
    const uploaded = await uploads.save(request.body as Readable, EXT[type] ?? '.bin')
    return { spec: withPath(parsed, uploaded), uploaded }
  }
  const body = request.body as { spec?: unknown } | undefined
  if (!body || typeof body !== 'object' || typeof body.spec !== 'object')
    throw serverErrors.create('STRATA_BAD_REQUEST', { message: 'Body must be {"spec": {...}}' })
  return { spec: body.spec as Record<string, unknown> }
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

function withPath(spec: Record<string, unknown>, path: string): Record<string, unknown> {
  return { ...spec, source: { ...(spec.source as object), path } }
}

/**
 * multipart/form-data: a `spec` field and one `file` part, in either order. The file is
 * streamed to disk as it arrives; a spec after the file is checked then, and the stored file
 * removed if the request fails.
 */
async function multipartSpec(
  request: FastifyRequest,
  uploads: UploadStore,
): Promise<Record<string, unknown>> {
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
        const ext = m ? `.${m[1]!.toLowerCase()}` : (EXT[part.mimetype] ?? '.bin')
        path = await uploads.save(part.file, ext)
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
    if (path) await uploads.remove(path)
    throw err
  }
}

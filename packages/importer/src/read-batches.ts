import type { ImportErrorCode } from './errors.js'
import type { PreparedRow } from './batch-writer.js'
import type { RowConverter, SourceRecord } from './convert.js'
import type { Reject } from './reject-file.js'
import type { Source } from './sources/source.js'

/** A batch of source records: converted rows plus the records rejected before the database. */
export interface Batch {
  rows: PreparedRow[]
  rejects: Reject[]
  /** Source records consumed (rows + rejects). */
  records: number
  lastLine: number
  bytesRead: number | null
}

function fieldsOf(rec: SourceRecord): string[] {
  return Array.isArray(rec.fields) ? rec.fields : [JSON.stringify(rec.fields)]
}

/**
 * Groups a source's records into batches: skips the first `skip` records (a resume), converts
 * each record, and yields every `batchSize()` records. Used in the main thread and in the parse
 * worker alike. Once `options.signal` is aborted it ends at the next read without yielding
 * the batch it was filling.
 */
export async function* readBatches(
  source: Source,
  converter: RowConverter,
  options: { skip: number; batchSize: () => number; maxBytes?: number; signal?: AbortSignal },
): AsyncGenerator<Batch> {
  const maxBytes = options.maxBytes ?? Infinity
  let bytes = 0
  let toSkip = options.skip
  let batch: Batch = { rows: [], rejects: [], records: 0, lastLine: 0, bytesRead: null }
  let limit = options.batchSize()
  // A read at a time where the source offers it: one promise hop per read, not per record.
  const chunks: AsyncIterable<SourceRecord[]> = source.chunks
    ? source.chunks()
    : (async function* () {
        let buf: SourceRecord[] = []
        for await (const rec of source.records()) {
          buf.push(rec)
          if (buf.length === 256) {
            yield buf
            buf = []
          }
        }
        if (buf.length > 0) yield buf
      })()
  for await (const recs of chunks) {
    // A pause stops reading here: the records of the unfinished batch are read again on resume.
    if (options.signal?.aborted) return
    // Records already buffered resolve as microtasks, which starve I/O: without this the
    // database's answers to the batch being written wait until parsing blocks on a file read.
    await new Promise<void>((r) => setImmediate(r))
    let i = 0
    if (toSkip > 0) {
      i = Math.min(toSkip, recs.length)
      toSkip -= i
    }
    for (; i < recs.length; i++) {
      const rec = recs[i]!
      const f = rec.fields
      if (Array.isArray(f)) for (let k = 0; k < f.length; k++) bytes += f[k]!.length
      batch.records++
      batch.lastLine = rec.line
      if (rec.error) {
        batch.rejects.push({
          line: rec.line,
          column: null,
          code: rec.error.code as ImportErrorCode,
          message: rec.error.message,
          fields: fieldsOf(rec),
        })
      } else {
        const r = converter.convert(rec)
        if (r.ok) batch.rows.push({ line: rec.line, values: r.values, fields: fieldsOf(rec) })
        else batch.rejects.push({ line: rec.line, ...r.reject, fields: fieldsOf(rec) })
      }
      if (batch.records >= limit || bytes >= maxBytes) {
        batch.bytesRead = source.bytesRead?.() ?? null
        yield batch
        bytes = 0
        limit = options.batchSize()
        batch = { rows: [], rejects: [], records: 0, lastLine: 0, bytesRead: null }
      }
    }
  }
  batch.bytesRead = source.bytesRead?.() ?? null
  if (batch.records > 0) yield batch
}

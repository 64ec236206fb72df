import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { importErrors } from './errors.js'
import type { ChunkInfo } from './job-store.js'
import { openCsvSource } from './sources/csv-source.js'
import { isGzip } from './sources/open-file.js'
import type { CsvSourceSpec, NdjsonSourceSpec } from './spec.js'

/**
 * Splits a plain (not gzip) CSV or NDJSON file into about `count` byte ranges that start and end
 * on record boundaries, in one sequential pass. CSV boundaries are newlines outside quoted fields
 * (tracked byte by byte, honouring the escape character), so a quoted newline never splits a
 * record. Each range carries the physical line it starts on and the CSV header, so chunks report
 * the same line numbers as a single-process run.
 */
export async function planChunks(
  source: CsvSourceSpec | NdjsonSourceSpec,
  path: string,
  count: number,
): Promise<ChunkInfo[]> {
  if (await isGzip(path, source.gzip ?? 'auto'))
    throw importErrors.create('STRATA_IMPORT_INVALID_SPEC', {
      message:
        'import spec: source.gzip: a gzip file cannot be split into byte ranges; use one worker',
      details: { field: 'source.gzip' },
    })
  const size = (await stat(path)).size
  let header: string[] | undefined
  let start = 0
  let line = 1
  const csv = source.format === 'csv'
  const quote = csv ? (source.quote ?? '"').charCodeAt(0) : -1
  const escape = csv ? (source.escape ?? source.quote ?? '"').charCodeAt(0) : -1
  const hasHeader = csv && source.header !== false
  if (hasHeader) {
    const src = await openCsvSource(source, path)
    header = src.header
    await src.close()
  }
  // Boundaries: byte offsets just after a record-ending newline, with the line that follows.
  const targets = Array.from({ length: count - 1 }, (_, i) => Math.floor(((i + 1) * size) / count))
  const cuts: { offset: number; line: number }[] = []
  let inQuote = false
  let escaped = false
  let pos = 0
  let headerDone = !hasHeader
  let firstLine = 1
  for await (const chunk of createReadStream(path, {
    highWaterMark: 1 << 20,
  }) as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!
      if (csv) {
        if (escaped) escaped = false
        else if (inQuote && b === escape && escape !== quote) escaped = true
        else if (b === quote) inQuote = !inQuote
      }
      if (b !== 10) continue
      line++
      if (inQuote) continue
      const offset = pos + i + 1
      if (!headerDone) {
        headerDone = true
        start = offset
        firstLine = line
        continue
      }
      const next = targets[cuts.length]
      if (next !== undefined && offset >= next && offset > start && offset < size)
        cuts.push({ offset, line })
    }
    pos += chunk.length
  }
  if (!headerDone) start = size
  const bounds = [{ offset: start, line: firstLine }, ...cuts]
  return bounds.map((b, i) => ({
    start: b.offset,
    end: bounds[i + 1]?.offset ?? size,
    firstLine: b.line,
    ...(header ? { header } : {}),
  }))
}

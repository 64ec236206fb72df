import { parse, type CsvError, type Options } from 'csv-parse'
import type { SourceRecord } from '../convert.js'
import type { CsvSourceSpec } from '../spec.js'
import { openFile, type ByteRange } from './open-file.js'
import { countLines, leadingLines, type Source } from './source.js'

export interface CsvOpenOptions {
  /** Read only these bytes (a chunk aligned on record boundaries). */
  range?: ByteRange
  /** Physical line number of the first byte read. @defaultValue 1 */
  firstLine?: number
  /** Header known from elsewhere (chunks after the first); the range then holds no header. */
  header?: string[]
}

interface ParsedRecord {
  record: string[]
  raw: string
}

interface Parsed {
  line: number
  fields: string[]
  /** Unparsable records met just before this one. */
  before?: SourceRecord[]
}

/**
 * Streams a CSV file through csv-parse with bounded memory (the parser pulls from the file
 * stream, and nothing is read ahead of the consumer beyond the stream buffers). Record-level
 * problems (field count, broken quotes) become records with `error`, so they reach the reject
 * file instead of stopping the job.
 */
export async function openCsvSource(
  spec: CsvSourceSpec,
  path: string,
  options: CsvOpenOptions = {},
): Promise<Source> {
  const input = await openFile(path, spec.gzip ?? 'auto', options.range)
  // Line numbers are computed in on_record/on_skip, which csv-parse calls synchronously in file
  // order (the stream may buffer records ahead of the consumer, so consumption order would not do).
  let pendingSkips: SourceRecord[] = []
  let linesBefore = (options.firstLine ?? 1) - 1
  const parserOptions: Options<Parsed, ParsedRecord> = {
    delimiter: spec.delimiter ?? ',',
    quote: spec.quote ?? '"',
    escape: spec.escape ?? spec.quote ?? '"',
    encoding: spec.encoding === 'latin1' ? 'latin1' : 'utf8',
    bom: true,
    raw: true,
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    on_skip: (err: CsvError | undefined, raw?: string) => {
      const text = typeof raw === 'string' ? raw : ''
      const line = linesBefore + leadingLines(text) + 1
      linesBefore += countLines(text)
      pendingSkips.push({
        line,
        fields: text ? [text] : [],
        error: { code: 'STRATA_IMPORT_PARSE_ERROR', message: err?.message ?? 'unparsable record' },
      })
      return undefined
    },
    on_record: (r: ParsedRecord): Parsed => {
      const line = linesBefore + leadingLines(r.raw) + 1
      linesBefore += countLines(r.raw)
      const rec: Parsed = { line, fields: r.record }
      if (pendingSkips.length > 0) {
        rec.before = pendingSkips
        pendingSkips = []
      }
      return rec
    },
  }
  const parser = parse(parserOptions as unknown as Options)
  input.on('error', (err) => parser.destroy(err))
  input.pipe(parser)
  const it = parser[Symbol.asyncIterator]() as AsyncIterator<Parsed>
  const toRecord = (r: Parsed): SourceRecord => ({ line: r.line, fields: r.fields })

  let header = options.header
  let first: SourceRecord | undefined
  let firstBefore: SourceRecord[] = []
  const wantHeader = spec.header !== false && !options.header
  const next = await it.next()
  if (!next.done) {
    const rec = toRecord(next.value)
    firstBefore = next.value.before ?? []
    if (wantHeader) header = (rec.fields as string[]).map((h) => h.trim())
    else first = rec
  }
  const expected = header?.length ?? (first ? (first.fields as string[]).length : 0)

  return {
    header: spec.header === false ? undefined : header,
    async *records() {
      const check = (rec: SourceRecord): SourceRecord => {
        const n = (rec.fields as string[]).length
        if (n !== expected && !rec.error)
          rec.error = {
            code: 'STRATA_IMPORT_COLUMN_COUNT',
            message: `expected ${expected} fields, got ${n}`,
          }
        return rec
      }
      yield* firstBefore
      if (first) yield check(first)
      for (;;) {
        const n = await it.next()
        if (n.done) break
        if (n.value.before) yield* n.value.before
        yield check(toRecord(n.value))
      }
      yield* pendingSkips
      pendingSkips = []
    },
    async close() {
      input.destroy()
      parser.destroy()
    },
  }
}

import { parse, type CsvError } from 'csv-parse'
import type { SourceRecord } from '../convert.js'
import type { CsvSourceSpec } from '../spec.js'
import { openFile, type ByteRange } from './open-file.js'
import { countLines, type Source } from './source.js'

export interface CsvOpenOptions {
  /** Read only these bytes (a chunk aligned on record boundaries). */
  range?: ByteRange
  /** Physical line number of the first byte read. @defaultValue 1 */
  firstLine?: number
  /** Header known from elsewhere (chunks after the first); the range then holds no header. */
  header?: string[]
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
  const opened = await openFile(path, spec.gzip ?? 'auto', options.range)
  const input = opened.stream
  // Physical lines are counted without csv-parse's `raw` option (which copies every character
  // into a second buffer): a record spans one line plus the line breaks inside its quoted
  // fields, and blank lines arrive as [''] records (skip_empty_lines off) that we skip here. A
  // skipped (unparsable) record is placed by the number of records csv-parse had emitted
  // before it, since the stream may hold parsed records the consumer has not taken yet.
  const skips: { after: number; message: string }[] = []
  let linesBefore = (options.firstLine ?? 1) - 1
  let consumed = 0
  const parser = parse({
    delimiter: spec.delimiter ?? ',',
    quote: spec.quote ?? '"',
    escape: spec.escape ?? spec.quote ?? '"',
    encoding: spec.encoding === 'latin1' ? 'latin1' : 'utf8',
    bom: true,
    // A stray quote inside an unquoted field is kept as a character (the value is then
    // validated like any other) rather than swallowing the rest of the file.
    relax_quotes: true,
    relax_column_count: true,
    skip_empty_lines: false,
    skip_records_with_error: true,
    on_skip: (err: CsvError | undefined) => {
      const after = (err as { records?: number } | undefined)?.records ?? consumed
      skips.push({ after, message: err?.message ?? 'unparsable record' })
      return undefined
    },
  })
  input.on('error', (err) => parser.destroy(err))
  input.pipe(parser)
  const it = parser[Symbol.asyncIterator]() as AsyncIterator<string[]>

  function* drainSkips(all: boolean): Generator<SourceRecord> {
    while (skips.length > 0 && (all || skips[0]!.after <= consumed)) {
      const sk = skips.shift()!
      // With relax_quotes the only unparsable record is an unclosed quote, which runs to the
      // end of the input: its start is the next line.
      yield {
        line: linesBefore + 1,
        fields: [],
        error: { code: 'STRATA_IMPORT_PARSE_ERROR', message: sk.message },
      }
    }
  }
  const isBlank = (r: string[]): boolean => r.length === 1 && r[0] === ''
  const toRecord = (r: string[]): SourceRecord => {
    const line = linesBefore + 1
    let lines = 1
    for (const f of r) if (f.includes('\n') || f.includes('\r')) lines += countLines(f)
    linesBefore += lines
    consumed++
    return { line, fields: r }
  }

  let header = options.header
  let first: SourceRecord | undefined
  const firstBefore: SourceRecord[] = []
  const wantHeader = spec.header !== false && !options.header
  let next = await it.next()
  while (!next.done && isBlank(next.value)) {
    linesBefore++
    consumed++
    next = await it.next()
  }
  if (!next.done) {
    firstBefore.push(...drainSkips(false))
    const rec = toRecord(next.value)
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
        if (skips.length > 0) yield* drainSkips(false)
        if (isBlank(n.value)) {
          linesBefore++
          consumed++
          continue
        }
        yield check(toRecord(n.value))
      }
      yield* drainSkips(true)
    },
    bytesRead: opened.bytesRead,
    async close() {
      input.destroy()
      parser.destroy()
    },
  }
}

import { StringDecoder } from 'node:string_decoder'
import type { SourceRecord } from '../convert.js'
import type { CsvSourceSpec } from '../spec.js'
import { CsvRecordParser } from './csv-record-parser.js'
import { openFile, type ByteRange } from './open-file.js'
import { countLines, type Source } from './source.js'
import { invalidUtf8InFields, StrictUtf8Decoder, withReplacementChars } from './utf8.js'

export interface CsvOpenOptions {
  /** Read only these bytes (a chunk aligned on record boundaries). */
  range?: ByteRange
  /** Physical line number of the first byte read. @defaultValue 1 */
  firstLine?: number
  /** Header known from elsewhere (chunks after the first); the range then holds no header. */
  header?: string[]
}

const PIECE_CHARS = 64 * 1024

interface TextDecoding {
  write(buf: Buffer): string
  end(): string
}

/**
 * Strips a byte-order mark from the first decoded text (csv-parse's `bom: true`). UTF-8 is
 * decoded strictly: bytes that are not UTF-8 stay visible, and their records are rejected.
 */
function decoderFor(
  first: Buffer,
  encoding: 'utf8' | 'latin1',
): { dec: TextDecoding; strict?: StrictUtf8Decoder; skip: number } {
  if (first[0] === 0xef && first[1] === 0xbb && first[2] === 0xbf) {
    const strict = new StrictUtf8Decoder()
    return { dec: strict, strict, skip: 3 }
  }
  if (first[0] === 0xff && first[1] === 0xfe) return { dec: new StringDecoder('utf16le'), skip: 2 }
  if (encoding === 'latin1') return { dec: new StringDecoder('latin1'), skip: 0 }
  const strict = new StrictUtf8Decoder()
  return { dec: strict, strict, skip: 0 }
}

/**
 * Streams a CSV file with bounded memory: 1 MiB reads, decoded and split into records by
 * CsvRecordParser (csv-parse's semantics, several times faster), handed on a read at a time.
 * Record-level problems (field count, an unclosed quote) become records with `error`, so they
 * reach the reject file instead of stopping the job.
 */
export async function openCsvSource(
  spec: CsvSourceSpec,
  path: string,
  options: CsvOpenOptions = {},
): Promise<Source> {
  const opened = await openFile(path, spec.gzip ?? 'auto', options.range)
  const input = opened.stream
  const quote = spec.quote ?? '"'
  const parser = new CsvRecordParser({
    delimiter: spec.delimiter ?? ',',
    quote,
    escape: spec.escape ?? quote,
  })
  const encoding = spec.encoding === 'latin1' ? 'latin1' : 'utf8'
  const chunks = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  let decoder: TextDecoding | undefined
  let strict: StrictUtf8Decoder | undefined
  let text = ''
  let pos = 0
  let ended = false
  /**
   * Raw records of the next piece of text, null at the end. The parser gets 64 Ki characters at
   * a time rather than a whole 1 MiB read, so fewer parsed-but-unconverted records are alive at
   * once (less for the young-generation GC to copy, lower peak memory).
   */
  const nextRaw = async (): Promise<string[][] | null> => {
    for (;;) {
      if (pos < text.length) {
        const out = parser.push(text.slice(pos, pos + PIECE_CHARS))
        pos += PIECE_CHARS
        if (out.length > 0) return out
        continue
      }
      if (ended) return null
      const n = await chunks.next()
      if (n.done) {
        ended = true
        const out: string[][] = []
        if (decoder) parser.push(decoder.end(), out)
        return parser.end(out)
      }
      let buf = n.value
      if (!decoder) {
        const d = decoderFor(buf, encoding)
        decoder = d.dec
        strict = d.strict
        buf = buf.subarray(d.skip)
      }
      text = decoder.write(buf)
      pos = 0
    }
  }

  // Physical lines: a record spans one line plus the line breaks inside its quoted fields;
  // blank lines arrive as [''] records, skipped here.
  let linesBefore = (options.firstLine ?? 1) - 1
  const isBlank = (r: string[]): boolean => r.length === 1 && r[0] === ''
  const toRecord = (r: string[]): SourceRecord => {
    const line = linesBefore + 1
    let lines = 1
    for (let i = 0; i < r.length; i++) {
      const f = r[i]!
      if (f.includes('\n') || f.includes('\r')) lines += countLines(f)
    }
    linesBefore += lines
    return { line, fields: r }
  }

  let header = options.header
  let first: SourceRecord | undefined
  const wantHeader = spec.header !== false && !options.header
  let pending: string[][] = []
  let at = 0
  for (;;) {
    while (at < pending.length && isBlank(pending[at]!)) {
      linesBefore++
      at++
    }
    if (at < pending.length) break
    const raw = await nextRaw()
    if (raw === null) break
    pending = raw
    at = 0
  }
  if (at < pending.length) {
    const rec = toRecord(pending[at++]!)
    if (wantHeader) header = withReplacementChars(rec.fields as string[]).map((h) => h.trim())
    else first = rec
  }
  const expected = header?.length ?? (first ? (first.fields as string[]).length : 0)
  const check = (rec: SourceRecord): SourceRecord => {
    if (strict?.sawInvalid) {
      // Only once the file showed an invalid byte: clean files never pay for the scan.
      const fields = rec.fields as string[]
      const why = invalidUtf8InFields(fields, rec.line, header)
      if (why) {
        rec.fields = withReplacementChars(fields)
        rec.error = { code: 'STRATA_IMPORT_PARSE_ERROR', message: why }
        return rec
      }
    }
    const n = (rec.fields as string[]).length
    if (n !== expected)
      rec.error = {
        code: 'STRATA_IMPORT_COLUMN_COUNT',
        message: `expected ${expected} fields, got ${n}`,
      }
    return rec
  }
  const unclosed = (): SourceRecord => ({
    // The unclosed quote runs to the end of the input: its record starts on the next line.
    line: linesBefore + 1,
    fields: [],
    error: {
      code: 'STRATA_IMPORT_PARSE_ERROR',
      message: `Quote Not Closed: the parsing is finished with an opening quote at line ${linesBefore + 1}`,
    },
  })

  async function* chunked(): AsyncGenerator<SourceRecord[]> {
    const out: SourceRecord[] = []
    if (first) out.push(check(first))
    for (; at < pending.length; at++) {
      const r = pending[at]!
      if (isBlank(r)) linesBefore++
      else out.push(check(toRecord(r)))
    }
    if (out.length > 0) yield out
    pending = []
    for (let raw = await nextRaw(); raw !== null; raw = await nextRaw()) {
      const recs: SourceRecord[] = []
      for (let i = 0; i < raw.length; i++) {
        const r = raw[i]!
        if (isBlank(r)) linesBefore++
        else recs.push(check(toRecord(r)))
      }
      if (recs.length > 0) yield recs
    }
    if (parser.unclosedQuote) yield [unclosed()]
  }

  return {
    header: spec.header === false ? undefined : header,
    chunks: chunked,
    async *records() {
      for await (const recs of chunked()) yield* recs
    },
    bytesRead: opened.bytesRead,
    async close() {
      input.destroy()
    },
  }
}

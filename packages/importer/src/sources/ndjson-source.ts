import type { SourceRecord } from '../convert.js'
import { importDefaults } from '../options.js'
import type { NdjsonSourceSpec } from '../spec.js'
import { openFile, type ByteRange } from './open-file.js'
import type { Source } from './source.js'
import { firstInvalidUtf8 } from './utf8.js'

export interface NdjsonOpenOptions {
  range?: ByteRange
  firstLine?: number
}

/**
 * Streams NDJSON: one JSON object per line; blank lines skipped; a line longer than
 * `maxLineBytes` is rejected without being buffered (hand-rolled splitter, since readline
 * buffers whole lines however long); a last line without a newline is still read.
 */
export async function openNdjsonSource(
  spec: NdjsonSourceSpec,
  path: string,
  options: NdjsonOpenOptions = {},
): Promise<Source> {
  const opened = await openFile(path, spec.gzip ?? 'auto', options.range)
  const input = opened.stream
  const maxLine = spec.maxLineBytes ?? importDefaults.maxLineBytes
  const firstLine = options.firstLine ?? 1

  function parseLine(buf: Buffer, line: number): SourceRecord | undefined {
    const bad = firstInvalidUtf8(buf)
    if (bad !== -1)
      return {
        line,
        fields: [buf.toString('utf8')],
        error: {
          code: 'STRATA_IMPORT_PARSE_ERROR',
          message: `invalid UTF-8 at byte offset ${bad} of line ${line}: byte 0x${buf[bad]!.toString(16).toUpperCase()}; NDJSON must be UTF-8`,
        },
      }
    let text = buf.toString('utf8')
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1)
    if (text.endsWith('\r')) text = text.slice(0, -1)
    if (text.trim() === '') return undefined
    try {
      const v: unknown = JSON.parse(text)
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        return {
          line,
          fields: [text],
          error: { code: 'STRATA_IMPORT_PARSE_ERROR', message: 'the line is not a JSON object' },
        }
      return { line, fields: v as Record<string, unknown> }
    } catch (err) {
      return {
        line,
        fields: [text],
        error: {
          code: 'STRATA_IMPORT_PARSE_ERROR',
          message: `invalid JSON: ${(err as Error).message}`,
        },
      }
    }
  }

  return {
    header: undefined,
    async *records() {
      let line = firstLine
      let parts: Buffer[] = []
      let size = 0
      let tooLong = false
      for await (const chunk of input as AsyncIterable<Buffer>) {
        let start = 0
        for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
          const piece = chunk.subarray(start, nl)
          if (tooLong || size + piece.length > maxLine) {
            yield {
              line,
              fields: [],
              error: {
                code: 'STRATA_IMPORT_LINE_TOO_LONG',
                message: `line longer than ${maxLine} bytes`,
              },
            }
          } else {
            const rec = parseLine(parts.length ? Buffer.concat([...parts, piece]) : piece, line)
            if (rec) yield rec
          }
          parts = []
          size = 0
          tooLong = false
          line++
          start = nl + 1
        }
        const rest = chunk.subarray(start)
        if (rest.length > 0 && !tooLong) {
          if (size + rest.length > maxLine) {
            tooLong = true
            parts = []
          } else {
            parts.push(Buffer.from(rest))
            size += rest.length
          }
        }
      }
      if (tooLong)
        yield {
          line,
          fields: [],
          error: {
            code: 'STRATA_IMPORT_LINE_TOO_LONG',
            message: `line longer than ${maxLine} bytes`,
          },
        }
      else if (parts.length > 0) {
        const rec = parseLine(Buffer.concat(parts), line)
        if (rec) yield rec
      }
    },
    bytesRead: opened.bytesRead,
    async close() {
      input.destroy()
    },
  }
}

import type { SourceRecord } from '../convert.js'

/** A stream of records: `header` is known once `open` resolved; `records` yields the rest. */
export interface Source {
  /** CSV header fields (undefined without a header or for object sources). */
  readonly header: string[] | undefined
  /** Records after the header, in source order, each exactly once. */
  records(): AsyncGenerator<SourceRecord>
  /** The same records, a read at a time (one promise per read instead of per record). */
  chunks?(): AsyncGenerator<SourceRecord[]>
  close(): Promise<void>
  /** Bytes consumed from the underlying file (file sources), for progress. */
  bytesRead?(): number
}

/** Counts line breaks (\r\n, \n or a lone \r) in `s`. */
export function countLines(s: string): number {
  let n = 0
  for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) n++
  if (s.includes('\r'))
    for (let i = 0; i < s.length; i++) if (s[i] === '\r' && s[i + 1] !== '\n') n++
  return n
}

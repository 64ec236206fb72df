/** Options of CsvRecordParser: single characters, as the spec allows. */
export interface CsvRecordParserOptions {
  delimiter: string
  quote: string
  /** Inside quoted fields: the escape character (the quote itself: `""` is one quote). */
  escape: string
}

const NL = 10
const CR = 13

/**
 * A CSV record splitter over decoded text with exactly csv-parse's semantics for the options the
 * importer uses (relax_quotes, relax_column_count, skip_empty_lines off, auto-detected record
 * delimiter, no trim, no comments) — checked against csv-parse by a seeded differential test.
 * Hand-written because csv-parse walks byte by byte through generic helpers and appends each
 * byte to a field buffer, which made it a large share of the importer's CPU and most of its
 * garbage. Here unescaped fields are single `slice`s found with `indexOf`.
 *
 * `push` returns the records completed by a chunk; a record cut by the chunk's end is kept and
 * parsed again with the next chunk. `end` returns the last record, or reports an unclosed quote.
 */
export class CsvRecordParser {
  readonly #d: number
  readonly #q: number
  readonly #e: number
  readonly #dc: string
  readonly #qc: string
  /** Record delimiter once discovered: '\n', '\r\n' or '\r' (the first one met outside quotes). */
  #rd: string | null = null
  #rest = ''
  /** Cached positions of the next \n / \r in the text being parsed (-1: not searched yet). */
  #nl = -1
  #cr = -1
  /** Set by end() when the input ended inside a quoted field. */
  unclosedQuote = false

  constructor(o: CsvRecordParserOptions) {
    this.#d = o.delimiter.charCodeAt(0)
    this.#q = o.quote.charCodeAt(0)
    this.#e = o.escape.charCodeAt(0)
    this.#dc = o.delimiter
    this.#qc = o.quote
  }

  push(chunk: string, out: string[][] = []): string[][] {
    const s = this.#rest.length > 0 ? this.#rest + chunk : chunk
    this.#rest = s.slice(this.#parse(s, false, out))
    return out
  }

  end(out: string[][] = []): string[][] {
    const s = this.#rest
    this.#rest = ''
    if (s.length > 0) this.#parse(s, true, out)
    return out
  }

  /** Record delimiter length at `i` (discovering it on first sight), 0 if none, -1 if undecidable. */
  #rdAt(s: string, i: number, final: boolean): number {
    const c = s.charCodeAt(i)
    if (c !== NL && c !== CR) return 0
    const rd = this.#rd
    if (rd === null) {
      if (c === CR) {
        if (i + 1 >= s.length && !final) return -1
        this.#rd = s.charCodeAt(i + 1) === NL ? '\r\n' : '\r'
      } else this.#rd = '\n'
      return this.#rd.length
    }
    if (rd === '\n') return c === NL ? 1 : 0
    if (rd === '\r') return c === CR ? 1 : 0
    if (c !== CR) return 0
    if (i + 1 >= s.length) return final ? 0 : -1
    return s.charCodeAt(i + 1) === NL ? 2 : 0
  }

  /** Parses complete records from `s`; returns the index where the unfinished record starts. */
  #parse(s: string, final: boolean, out: string[][]): number {
    const n = s.length
    this.#nl = -1
    this.#cr = -1
    const d = this.#d
    const q = this.#q
    const e = this.#e
    let recStart = 0
    let i = 0
    let record: string[] = []
    record: while (i < n || final) {
      if (i >= n) {
        // Final: an unterminated last record (csv-parse drops a trailing empty one).
        if (record.length > 0) {
          record.push('')
          out.push(record)
        }
        return n
      }
      // One field starting at i.
      let field: string
      let c = s.charCodeAt(i)
      if (c === q) {
        // Quoted field: pieces between escapes.
        let buf = ''
        let from = i + 1
        let j = i + 1
        let closed = false
        for (;;) {
          if (j >= n) {
            if (!final) return recStart
            this.unclosedQuote = true
            return n
          }
          const cj = s.charCodeAt(j)
          if (cj === e && e !== q) {
            if (j + 1 >= n) {
              if (!final) return recStart
              // csv-parse: an escape as the very last character is a plain character.
              j++
              continue
            }
            buf += s.slice(from, j)
            from = j + 1
            j += 2
            continue
          }
          if (cj === q) {
            if (e === q && j + 1 < n && s.charCodeAt(j + 1) === q) {
              buf += s.slice(from, j + 1)
              j += 2
              from = j
              continue
            }
            if (j + 1 >= n && !final) return recStart
            const next = j + 1
            if (next >= n || s.charCodeAt(next) === d) {
              field = buf + s.slice(from, j)
              i = next
              closed = true
              break
            }
            const rdl = this.#rdAt(s, next, final)
            if (rdl === -1) return recStart
            if (rdl > 0) {
              field = buf + s.slice(from, j)
              i = next
              closed = true
              break
            }
            // relax_quotes: the quoted part keeps its opening quote and the field goes on unquoted.
            field = this.#qc + buf + s.slice(from, j)
            i = j
            break
          }
          j++
        }
        if (!closed) {
          // Rest of an unquoted field after a relaxed closing quote (quotes are plain here).
          const end = this.#unquotedEnd(s, i, final)
          if (end === -1) return recStart
          field += s.slice(i, end)
          i = end
        }
      } else {
        const end = this.#unquotedEnd(s, i, final)
        if (end === -1) return recStart
        field = s.slice(i, end)
        i = end
      }
      record.push(field)
      if (i >= n) {
        if (!final) return recStart
        out.push(record)
        return n
      }
      c = s.charCodeAt(i)
      if (c === d) {
        i++
        if (i >= n) {
          if (!final) return recStart
          record.push('')
          out.push(record)
          return n
        }
        continue record
      }
      const rdl = this.#rdAt(s, i, final)
      if (rdl <= 0) return recStart // cannot happen: unquotedEnd stops only at these
      i += rdl
      out.push(record)
      record = []
      recStart = i
      if (i >= n) return final ? n : recStart
    }
    return recStart
  }

  /**
   * End of an unquoted field starting at `i`: the next delimiter or record delimiter (quotes are
   * plain characters here). -1 when the chunk ends first and more input may follow.
   */
  #unquotedEnd(s: string, i: number, final: boolean): number {
    const n = s.length
    let dPos = s.indexOf(this.#dc, i)
    if (dPos === -1) dPos = n
    for (let j = i; j < dPos;) {
      // Next line break at or after j, from the per-chunk cache (a line holds many fields).
      if (this.#nl < j) {
        this.#nl = s.indexOf('\n', j)
        if (this.#nl === -1) this.#nl = n
      }
      if (this.#cr < j) {
        this.#cr = this.#rd === '\n' ? n : s.indexOf('\r', j)
        if (this.#cr === -1) this.#cr = n
      }
      const k = Math.min(this.#nl, this.#cr)
      if (k >= dPos) break
      const rdl = this.#rdAt(s, k, final)
      if (rdl === -1) return -1
      if (rdl > 0) return k
      j = k + 1
    }
    if (dPos === n && !final) return -1
    return dPos
  }
}

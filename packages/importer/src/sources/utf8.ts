// Strict UTF-8 for the file sources: a byte sequence that is not UTF-8 (a latin1 `é` = 0xE9 in a
// file read as UTF-8) must reject its record, not load as U+FFFD. The fast path stays one
// `isUtf8` (SIMD) call per read; only a read that fails it is walked byte by byte.
import { isUtf8 } from 'node:buffer'

// Invalid bytes decode to lone low surrogates U+DC80–U+DCFF, one per byte (Python's
// "surrogateescape"): a UTF-8 decoder never produces a lone surrogate, so these mark exactly the
// bad bytes, and the record splitter passes them through like any other character.
const ESCAPE_BASE = 0xdc00
const ESCAPE = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/
const ESCAPES = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g

/**
 * The sequence starting at `i`: its length (> 0) when valid, minus the length of its maximal
 * invalid subpart (< 0) when not, 0 when `end` cuts a sequence that is valid so far.
 */
function sequenceAt(b: Uint8Array, i: number, end: number): number {
  const c = b[i]!
  if (c < 0x80) return 1
  let need: number
  let lo = 0x80
  let hi = 0xbf
  if (c >= 0xc2 && c <= 0xdf) need = 1
  else if (c >= 0xe0 && c <= 0xef) {
    need = 2
    if (c === 0xe0) lo = 0xa0
    else if (c === 0xed) hi = 0x9f // UTF-16 surrogates are not UTF-8
  } else if (c >= 0xf0 && c <= 0xf4) {
    need = 3
    if (c === 0xf0) lo = 0x90
    else if (c === 0xf4) hi = 0x8f // above U+10FFFF
  } else return -1
  for (let k = 1; k <= need; k++) {
    if (i + k >= end) return 0
    const x = b[i + k]!
    if (x < lo || x > hi) return -k
    lo = 0x80
    hi = 0xbf
  }
  return need + 1
}

/** Offset of the first byte of `b` that is not valid UTF-8, or -1 (a cut last sequence counts). */
export function firstInvalidUtf8(b: Uint8Array): number {
  if (isUtf8(b)) return -1
  for (let i = 0; i < b.length;) {
    if (b[i]! < 0x80) {
      i++
      continue
    }
    const len = sequenceAt(b, i, b.length)
    if (len <= 0) return i
    i += len
  }
  return -1
}

/** Where a trailing sequence that the next read may complete starts (`b.length` if none). */
function completeLength(b: Uint8Array): number {
  const n = b.length
  for (let k = 1; k <= 3 && k <= n; k++) {
    const c = b[n - k]!
    if (c < 0x80) return n
    if (c >= 0xc0) {
      const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2
      return k < need ? n - k : n
    }
  }
  return n
}

/** Decodes `b` with its invalid bytes as escapes (a sequence cut by the end is invalid). */
function decodeEscaping(b: Buffer): string {
  let out = ''
  let from = 0
  const n = b.length
  for (let i = 0; i < n;) {
    if (b[i]! < 0x80) {
      i++
      continue
    }
    const len = sequenceAt(b, i, n)
    if (len > 0) {
      i += len
      continue
    }
    const bad = len === 0 ? n - i : -len
    out += b.toString('utf8', from, i)
    for (let k = 0; k < bad; k++) out += String.fromCharCode(ESCAPE_BASE + b[i + k]!)
    i += bad
    from = i
  }
  return out + b.toString('utf8', from, n)
}

/**
 * A streaming UTF-8 decoder (StringDecoder's `write`/`end`) that keeps invalid bytes visible as
 * escapes instead of U+FFFD. A character cut by a read boundary is carried to the next read,
 * never taken for an invalid one.
 */
export class StrictUtf8Decoder {
  #carry: Buffer | null = null
  /** True once a read held an invalid byte: records decoded since may carry escapes. */
  sawInvalid = false

  write(chunk: Buffer): string {
    let data = this.#carry ? Buffer.concat([this.#carry, chunk]) : chunk
    this.#carry = null
    const cut = completeLength(data)
    if (cut < data.length) {
      this.#carry = Buffer.from(data.subarray(cut))
      data = data.subarray(0, cut)
    }
    if (isUtf8(data)) return data.toString('utf8')
    this.sawInvalid = true
    return decodeEscaping(data)
  }

  end(): string {
    const rest = this.#carry
    this.#carry = null
    if (!rest) return ''
    if (isUtf8(rest)) return rest.toString('utf8')
    this.sawInvalid = true
    return decodeEscaping(rest)
  }
}

/** UTF-8 length of `s` up to `end`, an escape counting as the one byte it stands for. */
function byteOffset(s: string, end: number): number {
  let n = 0
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < end) {
      n += 4
      i++
    } else if (c >= 0xdc80 && c <= 0xdcff) n += 1
    else n += 3
  }
  return n
}

/**
 * Why a decoded CSV record holds bytes that were not UTF-8 (the first one: byte offset in its
 * field, the field, the line, the byte), or undefined when it holds none.
 */
export function invalidUtf8InFields(
  fields: readonly string[],
  line: number,
  header?: string[],
): string | undefined {
  for (let f = 0; f < fields.length; f++) {
    const s = fields[f]!
    const i = s.search(ESCAPE)
    if (i === -1) continue
    const byte = s.charCodeAt(i) - ESCAPE_BASE
    const name = header?.[f]
    return `invalid UTF-8 at byte offset ${byteOffset(s, i)} of field ${f + 1}${name ? ` (${name})` : ''} on line ${line}: byte 0x${byte.toString(16).toUpperCase()}; save the file as UTF-8, or set source.encoding to 'latin1'`
  }
  return undefined
}

/** The fields with escapes shown as U+FFFD, for the reject log and file. */
export function withReplacementChars(fields: string[]): string[] {
  return fields.map((s) => (ESCAPE.test(s) ? s.replace(ESCAPES, '\uFFFD') : s))
}

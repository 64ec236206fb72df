import { zoneOffsetMs } from '@strata/core/time-zone'
import { importErrors, type ImportErrorCode } from './errors.js'
import { isJson } from './json-validate.js'
import type { ColumnSpec, ColumnType, ResolvedSpec, TransformSpec } from './spec.js'

/** One record as a source yields it. */
export interface SourceRecord {
  /** Physical line where the record starts (header = line 1); row number for a query source. */
  line: number
  /** CSV: the fields; NDJSON/Postgres: an object. */
  fields: string[] | Record<string, unknown>
  /** The record failed in the source itself (parse error, wrong field count, line too long). */
  error?: { code: ImportErrorCode; message: string }
}

export interface RowRejection {
  column: string
  code: ImportErrorCode
  message: string
}

/** Values are canonical text (COPY-ready) or null, in `columnNames` order. */
export type ConvertResult =
  { ok: true; values: (string | null)[] } | { ok: false; reject: RowRejection }

const INT_RE = /^[+-]?\d+$/
const NUMERIC_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i
const UUID_BRACED_RE = /^\{([0-9a-f-]{32,36})\}$/i
// Pragmatic address check (what most systems accept): local@domain.tld, no spaces, one @.
const EMAIL_RE =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/
const BOOL: Record<string, string> = {
  true: 't',
  t: 't',
  yes: 't',
  y: 't',
  '1': 't',
  on: 't',
  false: 'f',
  f: 'f',
  no: 'f',
  n: 'f',
  '0': 'f',
  off: 'f',
}
const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/
const INT32 = 2 ** 31
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

class ValueError extends Error {
  constructor(
    readonly code: ImportErrorCode,
    message: string,
  ) {
    super(message)
  }
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0')

function daysIn(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31
}

// Fast paths (no regex match arrays, no new strings) for the common canonical forms; anything
// else goes through the general parsers below.
const SHORT_INT_RE = /^-?(?:0|[1-9]\d{0,8})$/
const SHORT_BIGINT_RE = /^-?(?:0|[1-9]\d{0,17})$/

/** Two ASCII digits at `i` as a number, or -1. */
function two(t: string, i: number): number {
  const a = t.charCodeAt(i) - 48
  const b = t.charCodeAt(i + 1) - 48
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1
}

/**
 * True for a valid `YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}](Z|±HH:MM)`: an instant Postgres reads exactly
 * as written, so the value passes through unchanged (no canonical re-formatting).
 */
function isPlainIsoInstant(t: string): boolean {
  const n = t.length
  if (n < 20 || n > 32) return false
  const c10 = t.charCodeAt(10)
  if (
    t.charCodeAt(4) !== 45 ||
    t.charCodeAt(7) !== 45 ||
    (c10 !== 84 && c10 !== 32) ||
    t.charCodeAt(13) !== 58 ||
    t.charCodeAt(16) !== 58
  )
    return false
  const yh = two(t, 0)
  const yl = two(t, 2)
  const mo = two(t, 5)
  const d = two(t, 8)
  const h = two(t, 11)
  const mi = two(t, 14)
  const sec = two(t, 17)
  if (yh < 0 || yl < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23) return false
  if (mi < 0 || mi > 59 || sec < 0 || sec > 59) return false
  const y = yh * 100 + yl
  if (y < 1 || d > daysIn(y, mo)) return false
  let i = 19
  if (t.charCodeAt(i) === 46) {
    const from = ++i
    while (i < n && i - from < 7 && t.charCodeAt(i) >= 48 && t.charCodeAt(i) <= 57) i++
    if (i === from || i - from > 6) return false
  }
  const z = t.charCodeAt(i)
  if (z === 90) return i === n - 1
  if (z !== 43 && z !== 45) return false
  if (i !== n - 6 || t.charCodeAt(i + 3) !== 58) return false
  const oh = two(t, i + 1)
  const om = two(t, i + 4)
  return oh >= 0 && oh <= 15 && om >= 0 && om <= 59
}

interface DateParts {
  y: number
  mo: number
  d: number
  h: number
  mi: number
  s: number
  frac: string
  /** Offset in minutes east of UTC, when the value carries one. */
  offset?: number
}

function checkParts(p: DateParts): boolean {
  return (
    p.y >= 1 &&
    p.mo >= 1 &&
    p.mo <= 12 &&
    p.d >= 1 &&
    p.d <= daysIn(p.y, p.mo) &&
    p.h <= 23 &&
    p.mi <= 59 &&
    p.s <= 59
  )
}

function parseIso(v: string): DateParts | undefined {
  const m = ISO_RE.exec(v)
  if (!m) return undefined
  const p: DateParts = {
    y: +m[1]!,
    mo: +m[2]!,
    d: +m[3]!,
    h: m[4] ? +m[4] : 0,
    mi: m[5] ? +m[5] : 0,
    s: m[6] ? +m[6] : 0,
    frac: (m[7] ?? '').slice(0, 6),
  }
  const z = m[8]
  if (z) p.offset = z === 'Z' || z === 'z' ? 0 : parseOffset(z)
  return p
}

function parseOffset(z: string): number {
  const sign = z[0] === '-' ? -1 : 1
  const digits = z.slice(1).replace(':', '')
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'))
}

type FormatParser = (v: string) => DateParts | undefined

/** Compiles 'DD/MM/YYYY HH:mm:ss' style formats (tokens YYYY MM DD HH mm ss SSS). */
function compileFormat(fmt: string): FormatParser {
  const order: string[] = []
  const src = fmt.replace(/YYYY|MM|DD|HH|mm|ss|SSS|[.*+?^${}()|[\]\\]/g, (tok) => {
    switch (tok) {
      case 'YYYY':
        order.push('y')
        return '(\\d{4})'
      case 'MM':
        order.push('mo')
        return '(\\d{1,2})'
      case 'DD':
        order.push('d')
        return '(\\d{1,2})'
      case 'HH':
        order.push('h')
        return '(\\d{1,2})'
      case 'mm':
        order.push('mi')
        return '(\\d{2})'
      case 'ss':
        order.push('s')
        return '(\\d{2})'
      case 'SSS':
        order.push('frac')
        return '(\\d{1,6})'
      default:
        return `\\${tok}`
    }
  })
  const re = new RegExp(`^${src}$`)
  return (v) => {
    const m = re.exec(v)
    if (!m) return undefined
    const p: DateParts = { y: 0, mo: 1, d: 1, h: 0, mi: 0, s: 0, frac: '' }
    order.forEach((k, i) => {
      if (k === 'frac') p.frac = m[i + 1]!
      else (p as unknown as Record<string, number>)[k] = Number(m[i + 1])
    })
    return p
  }
}

/** Offset (minutes east of UTC) of `tz` at the instant `ms`. */
function tzOffsetAt(tz: string, ms: number): number {
  return Math.round(zoneOffsetMs(ms, tz) / 60000)
}

function formatTimestamp(p: DateParts, tz: string): string {
  let offset = p.offset
  if (offset === undefined) {
    if (tz === 'UTC') offset = 0
    else {
      // Wall time in `tz`: guess with the offset at that instant, then correct once for DST edges.
      const wall = Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s)
      offset = tzOffsetAt(tz, wall)
      offset = tzOffsetAt(tz, wall - offset * 60000)
    }
  }
  const sign = offset < 0 ? '-' : '+'
  const a = Math.abs(offset)
  const frac = p.frac ? `.${p.frac}` : ''
  return `${pad(p.y, 4)}-${pad(p.mo)}-${pad(p.d)} ${pad(p.h)}:${pad(p.mi)}:${pad(p.s)}${frac}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`
}

type Normalizer = (v: string) => string

function normalizerFor(col: ColumnSpec & { type: ColumnType }): Normalizer {
  const bad = (msg: string): never => {
    throw new ValueError('STRATA_IMPORT_INVALID_VALUE', msg)
  }
  switch (col.type) {
    case 'text':
      return (v) => (v.includes('\0') ? bad('text contains a NUL byte') : v)
    case 'int':
      return (v) => {
        if (SHORT_INT_RE.test(v)) return v
        const t = v.trim()
        if (!INT_RE.test(t)) bad(`"${v}" is not an integer`)
        const n = Number(t)
        if (n < -INT32 || n >= INT32) bad(`${t} is out of range for int`)
        return String(n)
      }
    case 'bigint':
      return (v) => {
        if (SHORT_BIGINT_RE.test(v)) return v
        const t = v.trim()
        if (!INT_RE.test(t)) bad(`"${v}" is not an integer`)
        const n = BigInt(t)
        if (n < INT64_MIN || n > INT64_MAX) bad(`${t} is out of range for bigint`)
        return n.toString()
      }
    case 'numeric':
      return (v) => {
        const t = v.trim()
        return NUMERIC_RE.test(t) ? t : bad(`"${v}" is not a number`)
      }
    case 'bool':
      return (v) => BOOL[v.trim().toLowerCase()] ?? bad(`"${v}" is not a boolean`)
    case 'uuid':
      return (v) => {
        const t = v.trim()
        const inner = UUID_BRACED_RE.exec(t)?.[1] ?? t
        return UUID_RE.test(inner) ? inner.toLowerCase() : bad(`"${v}" is not a UUID`)
      }
    case 'email':
      return (v) => {
        const t = v.trim()
        return t.length <= 254 && EMAIL_RE.test(t) ? t : bad(`"${v}" is not an email address`)
      }
    case 'json':
      // Validated, then passed through as written: re-serialising would only cost time (jsonb
      // normalises it anyway).
      return (v) => (isJson(v) ? v : bad('not valid JSON'))
    case 'enum': {
      const allowed = new Set(col.values)
      return (v) => (allowed.has(v) ? v : bad(`"${v}" is not one of ${col.values!.join(', ')}`))
    }
    case 'date':
    case 'timestamp': {
      const formats = (col.formats ?? []).map(compileFormat)
      const tz = col.tz ?? 'UTC'
      const isDate = col.type === 'date'
      return (v) => {
        if (!isDate && isPlainIsoInstant(v)) return v
        const t = v.trim()
        let p = parseIso(t)
        for (let i = 0; !p && i < formats.length; i++) p = formats[i]!(t)
        if (!p || !checkParts(p)) bad(`"${v}" is not a valid ${col.type}`)
        return isDate ? `${pad(p!.y, 4)}-${pad(p!.mo)}-${pad(p!.d)}` : formatTimestamp(p!, tz)
      }
    }
  }
}

type Transformer = (v: string | null, row: () => Record<string, unknown>) => string | null

function stringify(v: unknown): string | null {
  if (v === null || v === undefined) return null
  if (typeof v === 'string') return v
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString()
  if (Buffer.isBuffer(v)) return `\\x${v.toString('hex')}`
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

function transformerFor(t: TransformSpec): Transformer {
  if (typeof t === 'function') return (v, row) => stringify(t(v, row()))
  if (t === 'trim') return (v) => (v === null ? v : v.trim())
  if (t === 'lower') return (v) => (v === null ? v : v.toLowerCase())
  if (t === 'upper') return (v) => (v === null ? v : v.toUpperCase())
  if ('regex' in t) {
    const re = new RegExp(t.regex, t.flags)
    return (v) => (v === null ? v : v.replace(re, t.replace))
  }
  const map = new Map(Object.entries(t.map))
  const keep = t.default !== 'null'
  return (v) => {
    if (v === null) return v
    const r = map.get(v)
    return r !== undefined ? r : keep ? v : null
  }
}

export interface RowConverter {
  /** Target column names, in value order. */
  readonly columnNames: string[]
  convert(record: SourceRecord): ConvertResult
}

/**
 * Compiles the spec's columns into one converter: pick the field, empty → NULL, transforms,
 * default, required, type check and canonical text. `header` maps CSV header names to indexes.
 */
export function compileConverter(spec: ResolvedSpec, header: string[] | undefined): RowConverter {
  const entries = Object.entries(spec.columns)
  const columnNames = entries.map(([n]) => n)
  const isCsv = spec.source.format === 'csv'
  const steps = entries.map(([name, col]) => {
    const from = col.from ?? name
    let index = -1
    if (isCsv) {
      if (typeof from === 'number') index = from
      else if (header) {
        index = header.indexOf(from)
        if (index < 0)
          throw importErrors.create('STRATA_IMPORT_INVALID_SPEC', {
            message: `import spec: columns.${name}.from: the CSV header has no field "${from}" (fields: ${header.join(', ')})`,
            details: { field: `columns.${name}.from` },
          })
      } else
        throw importErrors.create('STRATA_IMPORT_INVALID_SPEC', {
          message: `import spec: columns.${name}.from must be a 0-based field index when source.header is false`,
          details: { field: `columns.${name}.from` },
        })
    }
    const def = col.default === undefined || col.default === null ? null : String(col.default)
    return {
      name,
      index,
      key: String(from),
      transforms: col.transforms.map(transformerFor),
      def,
      required: col.required === true,
      // Lookup columns keep the source key here; the lookup stage swaps in the parent's value.
      normalize: col.lookup ? (v: string) => v : normalizerFor(col),
    }
  })
  return {
    columnNames,
    convert(record) {
      const { fields } = record
      let rowObj: Record<string, unknown> | undefined
      const row = (): Record<string, unknown> => {
        if (rowObj) return rowObj
        if (!Array.isArray(fields)) return (rowObj = fields)
        rowObj = {}
        if (header) header.forEach((h, i) => (rowObj![h] = fields[i]))
        else fields.forEach((f, i) => (rowObj![i] = f))
        return rowObj
      }
      const values: (string | null)[] = new Array(steps.length)
      for (let i = 0; i < steps.length; i++) {
        const s = steps[i]!
        let v: string | null
        try {
          v = Array.isArray(fields) ? (fields[s.index] ?? null) : stringify(fields[s.key])
          if (v === '') v = null
          for (const t of s.transforms) v = t(v, row)
        } catch (err) {
          return {
            ok: false,
            reject: {
              column: s.name,
              code: 'STRATA_IMPORT_TRANSFORM_FAILED',
              message: (err as Error).message,
            },
          }
        }
        if (v === '') v = null
        if (v === null) v = s.def
        if (v === null) {
          if (s.required)
            return {
              ok: false,
              reject: {
                column: s.name,
                code: 'STRATA_IMPORT_REQUIRED',
                message: `${s.name} is required`,
              },
            }
          values[i] = null
          continue
        }
        try {
          values[i] = s.normalize(v)
        } catch (err) {
          if (!(err instanceof ValueError)) throw err
          return { ok: false, reject: { column: s.name, code: err.code, message: err.message } }
        }
      }
      return { ok: true, values }
    },
  }
}

/** COPY text-format field: NULL is \N; backslash and control characters are escaped. */
export function copyField(v: string | null): string {
  if (v === null) return '\\N'
  // Fast path: most values need no escaping.
  if (!/[\\\t\n\r]/.test(v)) return v
  return v.replace(/[\\\t\n\r]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r',
  )
}

// COPY text format encoding (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2).
// Hand-written because it is a dozen lines and sits on the hot path: a CSV library would add a
// dependency and quoting rules COPY's text format does not need.

const NEEDS_ESCAPE = /[\\\t\n\r]/
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' }

export const NULL = '\\N'

export function copyText(s: string | null | undefined): string {
  if (s === null || s === undefined) return NULL
  return NEEDS_ESCAPE.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]!) : s
}

export function copyJson(v: unknown): string {
  return v === null || v === undefined ? NULL : copyText(JSON.stringify(v))
}

export function copyBool(b: boolean): string {
  return b ? 't' : 'f'
}

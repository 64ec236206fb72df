import { isPgText } from './pg-text.js'

/**
 * Opaque keyset-pagination cursors over `(timestamp, id)`: base64url of `["<ts>", "<id>"]`,
 * the timestamp as ISO 8601 UTC with microseconds (PostgreSQL's precision, so the next page
 * starts exactly after the last row).
 */
export interface KeysetCursor {
  ts: string
  id: string
}

const CURSOR_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/

/**
 * True when `ts` (of CURSOR_TS's shape) is an instant PostgreSQL's timestamptz takes as written:
 * Date.parse reads year 0000 (1 BC) and rolls 30 February over to March, both of which
 * PostgreSQL refuses ("date/time field value out of range"), so the fields must survive a
 * round trip through Date and the year must be 0001 or later.
 */
function isCursorInstant(ts: string): boolean {
  const ms = Date.parse(ts)
  return (
    Number.isFinite(ms) &&
    !ts.startsWith('0000') &&
    new Date(ms).toISOString().slice(0, 19) === ts.slice(0, 19)
  )
}

export function encodeKeysetCursor(c: KeysetCursor): string {
  return Buffer.from(JSON.stringify([c.ts, c.id]), 'utf8').toString('base64url')
}

/**
 * The cursor, or null when `value` is not one this module made (callers answer 400). A cursor
 * is client input: its id must be text PostgreSQL takes (no NUL, no lone surrogate), since it
 * is compared in SQL.
 */
export function decodeKeysetCursor(value: string): KeysetCursor | null {
  if (value.length > 2000) return null
  try {
    const v: unknown = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'))
    if (
      Array.isArray(v) &&
      v.length === 2 &&
      typeof v[0] === 'string' &&
      CURSOR_TS.test(v[0]) &&
      isCursorInstant(v[0]) &&
      typeof v[1] === 'string' &&
      isPgText(v[1])
    )
      return { ts: v[0], id: v[1] }
  } catch {
    // not JSON: null below
  }
  return null
}

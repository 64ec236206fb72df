/** What the instrumentation needs to know about one statement text. */
export interface SqlInfo {
  /** Upper-case verb: SELECT, INSERT, UPDATE, DELETE, COPY, BEGIN, ... ('OTHER' if unknown). */
  readonly operation: string
  /** Main table (schema stripped, lower-case), or '' when none is obvious. */
  readonly collection: string
}

const PARSE_LIMIT = 8192
/** Statements longer than this are classified but not cached (inlined-value SQL would churn it). */
export const CACHE_TEXT_LIMIT = 16_384
const VERB = /^[a-z]+/i
// One regex per verb for the main table; quoted identifiers lose their quotes.
const IDENT = String.raw`((?:"[^"]+"|[a-z_][\w$]*)(?:\s*\.\s*(?:"[^"]+"|[a-z_][\w$]*))?)`
const TABLE_AFTER: Record<string, RegExp> = {
  SELECT: new RegExp(String.raw`\bfrom\s+(?:only\s+)?${IDENT}`, 'i'),
  INSERT: new RegExp(String.raw`\binto\s+${IDENT}`, 'i'),
  UPDATE: new RegExp(String.raw`^update\s+(?:only\s+)?${IDENT}`, 'i'),
  DELETE: new RegExp(String.raw`^delete\s+from\s+(?:only\s+)?${IDENT}`, 'i'),
  MERGE: new RegExp(String.raw`^merge\s+into\s+${IDENT}`, 'i'),
  COPY: new RegExp(String.raw`^copy\s+${IDENT}`, 'i'),
  TRUNCATE: new RegExp(String.raw`^truncate\s+(?:table\s+)?(?:only\s+)?${IDENT}`, 'i'),
}
const MAIN_VERB = /\b(select|insert|update|delete|merge)\b/gi

function stripLeading(sql: string): string {
  let s = sql
  // Leading whitespace, -- line comments and /* block */ comments (e.g. sqlcommenter tags).
  for (;;) {
    s = s.trimStart()
    if (s.startsWith('--')) {
      const nl = s.indexOf('\n')
      s = nl === -1 ? '' : s.slice(nl + 1)
    } else if (s.startsWith('/*')) {
      const end = s.indexOf('*/')
      s = end === -1 ? '' : s.slice(end + 2)
    } else if (s.startsWith('(')) {
      s = s.slice(1)
    } else return s
  }
}

function unquote(ident: string): string {
  const parts = ident.split('.').map((p) => p.trim())
  const last = parts[parts.length - 1] ?? ''
  return last.startsWith('"') ? last.slice(1, -1) : last.toLowerCase()
}

/**
 * Cheap, regex-level classification of a statement (not a parser): good enough for metric
 * labels. For `WITH ...` the operation is the last top-level-looking verb (the CTE body's verbs
 * come first), which is right for the usual `WITH x AS (...) SELECT/INSERT ...` shapes.
 */
export function parseSqlInfo(sql: string): SqlInfo {
  // The verb and main table sit near the start; bound the regex work on huge statements.
  const s = stripLeading(sql.length > PARSE_LIMIT ? sql.slice(0, PARSE_LIMIT) : sql)
  let op = (VERB.exec(s)?.[0] ?? '').toUpperCase()
  let body = s
  if (op === 'WITH') {
    // Find the verb after the last closing parenthesis of the CTE list.
    const close = s.lastIndexOf(')')
    const tail = close === -1 ? s : s.slice(close + 1)
    MAIN_VERB.lastIndex = 0
    const m = MAIN_VERB.exec(tail)
    op = m ? m[1]!.toUpperCase() : 'SELECT'
    body = m ? tail.slice(m.index) : s
  }
  if (op === '') return { operation: 'OTHER', collection: '' }
  if (op === 'TABLE') op = 'SELECT'
  const re = TABLE_AFTER[op]
  const m = re ? re.exec(body) : null
  return { operation: op, collection: m ? unquote(m[1]!) : '' }
}

/**
 * Memoises parseSqlInfo per statement text. Bounded with FIFO eviction (a Map keeps insertion
 * order): applications use a bounded set of statement texts, so the hit path is a single Map
 * lookup; an app that inlines values into SQL only costs a re-parse, never unbounded memory.
 */
export class SqlInfoCache<T extends SqlInfo = SqlInfo> {
  readonly #map = new Map<string, T>()
  readonly #max: number
  readonly #make: (info: SqlInfo, sql: string) => T

  constructor(max: number, make: (info: SqlInfo, sql: string) => T) {
    this.#max = max
    this.#make = make
  }

  get(sql: string): T {
    let v = this.#map.get(sql)
    if (v === undefined) {
      v = this.#make(parseSqlInfo(sql), sql)
      if (sql.length > CACHE_TEXT_LIMIT) return v
      if (this.#map.size >= this.#max) this.#map.delete(this.#map.keys().next().value as string)
      this.#map.set(sql, v)
    }
    return v
  }

  get size(): number {
    return this.#map.size
  }
}

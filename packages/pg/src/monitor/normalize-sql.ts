// A small hand-written lexer rather than the parser the SQL guard uses (libpg-query): this runs
// on every monitored statement, where a WASM parse would cost far more than the query's
// bookkeeping, and it only has to find literals, comments and statement separators for display
// and grouping. Nothing here decides what SQL may run: that is the guard's job.

const NORMALIZE_LIMIT = 16_384
// Literals are first emitted as this marker, lists folded, then numbered: so `IN (1,2)` and
// `IN (1,2,3)` give the same text, numbering included.
const LIT = '\uE000'

export interface NormalizedSql {
  /** Literals replaced by `$n`, comments dropped, whitespace collapsed, IN/VALUES lists folded. */
  readonly text: string
  /** More than one statement (a `;` followed by anything but whitespace/comments). */
  readonly multiStatement: boolean
  /** Highest `$n` placeholder of the original statement (outside literals and comments); 0 when none. */
  readonly placeholders: number
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57
}
function isIdentChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || isDigit(c) || c === 95 || c === 36
}

/**
 * Normalises a statement for grouping (like pg_stat_statements' query text): string, numeric
 * and dollar-quoted literals become `$n` (numbered after the statement's own highest `$n`), so
 * values never reach logs or stats, and the number of distinct statements stays bounded.
 */
export function normalizeSql(sql: string): NormalizedSql {
  const s = sql.length > NORMALIZE_LIMIT ? sql.slice(0, NORMALIZE_LIMIT) : sql
  let out = ''
  let pendingSpace = false
  let afterSemicolon = false
  let multiStatement = false
  let placeholders = 0
  const emit = (t: string): void => {
    if (afterSemicolon) multiStatement = true
    if (pendingSpace && out.length > 0) out += ' '
    pendingSpace = false
    out += t
  }
  let i = 0
  const n = s.length
  while (i < n) {
    const c = s.charCodeAt(i)
    // whitespace
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === 12) {
      pendingSpace = true
      i++
      continue
    }
    // -- comment
    if (c === 45 && s.charCodeAt(i + 1) === 45) {
      const nl = s.indexOf('\n', i)
      i = nl === -1 ? n : nl + 1
      pendingSpace = true
      continue
    }
    // /* comment */ (nesting allowed in Postgres)
    if (c === 47 && s.charCodeAt(i + 1) === 42) {
      let depth = 1
      i += 2
      while (i < n && depth > 0) {
        if (s.charCodeAt(i) === 47 && s.charCodeAt(i + 1) === 42) {
          depth++
          i += 2
        } else if (s.charCodeAt(i) === 42 && s.charCodeAt(i + 1) === 47) {
          depth--
          i += 2
        } else i++
      }
      pendingSpace = true
      continue
    }
    // 'string' (also E'..', B'..', X'..', N'..' prefixes: the prefix letter is dropped)
    if (c === 39) {
      const prefixed =
        !pendingSpace &&
        /[eEbBxXnN]$/.test(out) &&
        !isIdentChar(out.charCodeAt(out.length - 2) || 0)
      const escapes = prefixed && /[eE]$/.test(out)
      if (prefixed) out = out.slice(0, -1)
      i++
      while (i < n) {
        const d = s.charCodeAt(i)
        if (escapes && d === 92) {
          i += 2
          continue
        }
        if (d === 39) {
          if (s.charCodeAt(i + 1) === 39) {
            i += 2
            continue
          }
          break
        }
        i++
      }
      i++
      emit(LIT)
      continue
    }
    // "identifier"
    if (c === 34) {
      const end = s.indexOf('"', i + 1)
      const stop = end === -1 ? n : end + 1
      emit(s.slice(i, stop))
      i = stop
      continue
    }
    // $n parameter or $tag$ dollar-quoted literal
    if (c === 36) {
      if (isDigit(s.charCodeAt(i + 1))) {
        let j = i + 1
        while (j < n && isDigit(s.charCodeAt(j))) j++
        placeholders = Math.max(placeholders, Number(s.slice(i + 1, j)))
        emit(s.slice(i, j))
        i = j
        continue
      }
      const m = /^\$([A-Za-z_][\w]*)?\$/.exec(s.slice(i, i + 64))
      if (m) {
        const tag = m[0]
        const end = s.indexOf(tag, i + tag.length)
        i = end === -1 ? n : end + tag.length
        emit(LIT)
        continue
      }
    }
    // number (not part of an identifier such as t1)
    // (identifier runs below consume their own digits, so a digit here starts a number)
    if (isDigit(c) || (c === 46 && isDigit(s.charCodeAt(i + 1)))) {
      let j = i
      while (j < n) {
        const d = s.charCodeAt(j)
        if (isDigit(d) || d === 46 || d === 95) j++
        else if ((d === 101 || d === 69) && /[+\-\d]/.test(s[j + 1] ?? '')) j += 2
        else break
      }
      emit(LIT)
      i = j
      continue
    }
    if (c === 59) {
      // `;` — statement separator. A trailing one is fine; anything after it is a second statement.
      afterSemicolon = true
      i++
      continue
    }
    // identifier / keyword / operator run
    let j = i + 1
    if (isIdentChar(c)) while (j < n && isIdentChar(s.charCodeAt(j))) j++
    if (pendingSpace || !isIdentChar(c) || !isIdentChar(out.charCodeAt(out.length - 1) || 0))
      emit(s.slice(i, j))
    else {
      if (afterSemicolon) multiStatement = true
      out += s.slice(i, j)
    }
    i = j
  }
  // Fold value lists so `IN (1,2,3)` and `IN (1,2)` (and multi-row VALUES) group together.
  let text = out.replace(/\(\s*(\$\d+|\uE000)(?:\s*,\s*(?:\$\d+|\uE000))+\s*\)/g, '($1, ...)')
  text = text.replace(/(\([^()]*\))(?:\s*,\s*\([^()]*\))+/g, (all, first: string) =>
    /^\(\s*(\$|\uE000)/.test(first) ? `${first}, ...` : all,
  )
  // Real placeholders keep their numbers; literals are numbered after the highest one.
  let next = placeholders
  text = text.replace(/\uE000/g, () => `$${++next}`)
  return { text, multiStatement, placeholders }
}

// JSON syntax check without building the value: JSON.parse allocated every object, array and
// string of each cell only to throw them away (the text goes to Postgres as written), which made
// it the converter's largest cost and a good share of its garbage.

const WS = (c: number): boolean => c === 32 || c === 10 || c === 13 || c === 9
const DIGIT = (c: number): boolean => c >= 48 && c <= 57
const HEX = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)
/** Deeper documents are left to JSON.parse (recursion here, like there). */
const MAX_DEPTH = 512
const TOO_DEEP = -2

function ws(s: string, i: number): number {
  while (i < s.length && WS(s.charCodeAt(i))) i++
  return i
}

function str(s: string, i: number): number {
  // s[i] is the opening quote.
  for (i++; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 34) return i + 1
    if (c < 32) return -1
    if (c === 92) {
      const e = s.charCodeAt(++i)
      if (e === 117) {
        for (let k = 1; k <= 4; k++) if (!HEX(s.charCodeAt(i + k))) return -1
        i += 4
      } else if (
        e !== 34 &&
        e !== 92 &&
        e !== 47 &&
        e !== 98 &&
        e !== 102 &&
        e !== 110 &&
        e !== 114 &&
        e !== 116
      )
        return -1
    }
  }
  return -1
}

function num(s: string, i: number): number {
  if (s.charCodeAt(i) === 45) i++
  const c = s.charCodeAt(i)
  if (c === 48) i++
  else if (c >= 49 && c <= 57) while (DIGIT(s.charCodeAt(i))) i++
  else return -1
  if (s.charCodeAt(i) === 46) {
    i++
    if (!DIGIT(s.charCodeAt(i))) return -1
    while (DIGIT(s.charCodeAt(i))) i++
  }
  const e = s.charCodeAt(i)
  if (e === 101 || e === 69) {
    i++
    const sg = s.charCodeAt(i)
    if (sg === 43 || sg === 45) i++
    if (!DIGIT(s.charCodeAt(i))) return -1
    while (DIGIT(s.charCodeAt(i))) i++
  }
  return i
}

function word(s: string, i: number, w: string): number {
  return s.startsWith(w, i) ? i + w.length : -1
}

/** End of the value at `i` (no leading whitespace), -1 if invalid, TOO_DEEP past MAX_DEPTH. */
function value(s: string, i: number, depth: number): number {
  const c = s.charCodeAt(i)
  if (c === 34) return str(s, i)
  if (c === 123 || c === 91) {
    if (depth >= MAX_DEPTH) return TOO_DEEP
    const obj = c === 123
    const close = obj ? 125 : 93
    i = ws(s, i + 1)
    if (s.charCodeAt(i) === close) return i + 1
    for (;;) {
      if (obj) {
        if (s.charCodeAt(i) !== 34) return -1
        i = ws(s, str(s, i))
        if (i < 0 || s.charCodeAt(i) !== 58) return -1
        i = ws(s, i + 1)
      }
      i = value(s, i, depth + 1)
      if (i < 0) return i
      i = ws(s, i)
      const d = s.charCodeAt(i)
      if (d === close) return i + 1
      if (d !== 44) return -1
      i = ws(s, i + 1)
    }
  }
  if (c === 116) return word(s, i, 'true')
  if (c === 102) return word(s, i, 'false')
  if (c === 110) return word(s, i, 'null')
  return num(s, i)
}

/** True when `s` is one JSON document (what JSON.parse accepts), without building it. */
export function isJson(s: string): boolean {
  const end = value(s, ws(s, 0), 0)
  if (end === TOO_DEEP) {
    try {
      JSON.parse(s)
      return true
    } catch {
      return false
    }
  }
  return end >= 0 && ws(s, end) === s.length
}

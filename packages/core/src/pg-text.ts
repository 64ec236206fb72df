import { isIP } from 'node:net'

type WellFormed = { isWellFormed(): boolean }

/**
 * Why PostgreSQL would not store `s` unchanged as text or inside jsonb, or null when it would.
 * NUL (`\u0000`) is refused by text and jsonb alike; an unpaired UTF-16 surrogate (JSON.parse
 * accepts `"\ud800"`) is not UTF-8: in a text parameter it silently becomes U+FFFD, in jsonb
 * the escape is refused. Check every string from a request with this before a query sees it,
 * and refuse rather than strip, so what is stored is what was sent.
 */
export function pgTextProblem(s: string): string | null {
  if (s.includes('\u0000')) return 'contains a NUL character (\\u0000)'
  if (!(s as unknown as WellFormed).isWellFormed()) return 'contains an unpaired UTF-16 surrogate'
  return null
}

/** True when PostgreSQL stores `s` unchanged as text or jsonb (see pgTextProblem). */
export function isPgText(s: string): boolean {
  return !s.includes('\u0000') && (s as unknown as WellFormed).isWellFormed()
}

/**
 * Returns `value` when PostgreSQL can store it; otherwise throws `toError(message)`, the
 * message naming `field`, e.g. `userId contains a NUL character (\u0000)`. Each layer passes
 * its own error (400 with its code).
 */
export function assertPgText(
  value: string,
  field: string,
  toError: (message: string, field: string) => Error,
): string {
  const problem = pgTextProblem(value)
  if (problem !== null) throw toError(`${field} ${problem}`, field)
  return value
}

/** Where in a value the first string PostgreSQL would refuse is, and why. */
export interface PgTextIssue {
  /** Keys and indexes from the root; a bad object key ends the path itself. */
  path: (string | number)[]
  problem: string
}

/**
 * The first string (object keys included) in a parsed value that PostgreSQL would refuse, or
 * null. Walks at most `maxDepth` levels; deeper values are not looked at (callers bound depth).
 */
export function findPgTextIssue(value: unknown, maxDepth = 64): PgTextIssue | null {
  const path: (string | number)[] = []
  const walk = (v: unknown, depth: number): PgTextIssue | null => {
    if (typeof v === 'string') {
      const problem = pgTextProblem(v)
      return problem === null ? null : { path: [...path], problem }
    }
    if (typeof v !== 'object' || v === null || depth >= maxDepth) return null
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i)
        const issue = walk(v[i], depth + 1)
        if (issue) return issue
        path.pop()
      }
      return null
    }
    for (const [key, item] of Object.entries(v)) {
      path.push(key)
      const keyProblem = pgTextProblem(key)
      if (keyProblem !== null) return { path: [...path], problem: `key ${keyProblem}` }
      const issue = walk(item, depth + 1)
      if (issue) return issue
      path.pop()
    }
    return null
  }
  return walk(value, 0)
}

/**
 * An IP address as PostgreSQL's `inet` takes it, or null when `address` is not one. Node
 * accepts IPv6 zone ids (`fe80::1%eth0`, e.g. from a link-local peer or X-Forwarded-For) and
 * `inet` refuses them; a zone names an interface of the host that saw the address and means
 * nothing elsewhere, so it is dropped and the address kept.
 */
export function toPgInet(address: string): string | null {
  const kind = isIP(address)
  if (kind === 4) return address
  if (kind !== 6) return null
  const zone = address.indexOf('%')
  if (zone === -1) return address
  const bare = address.slice(0, zone)
  return isIP(bare) === 6 ? bare : null
}

import { eventsErrors, type EventsErrorCode } from '../errors.js'
import { isPgText, type StrataError } from '@strata/core'

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/**
 * True when `s` can be stored in PostgreSQL text/jsonb unchanged (core's isPgText: no NUL, no
 * unpaired UTF-16 surrogate). We reject instead of stripping so that what is stored is exactly
 * what was sent.
 */
export const isStorableString = isPgText

function fail(
  code: EventsErrorCode,
  path: readonly (string | number)[],
  what: string,
): StrataError {
  const pointer = path.length
    ? '/' + path.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')
    : ''
  return eventsErrors.create(code, {
    message: `${eventsErrors.definitions[code].message}: ${what}${pointer ? ` at ${pointer}` : ''}`,
    details: { path: pointer || '/' },
  })
}

/**
 * Walks a parsed JSON value once and returns the first problem Postgres or JavaScript would
 * have with it: nesting beyond `maxDepth`, prototype-polluting keys, unstorable strings,
 * non-finite numbers (JSON.parse turns 1e400 into Infinity). Returns null when clean.
 * Recursion is bounded by `maxDepth`, so a hostile body cannot overflow the stack here.
 */
export function checkJsonValue(value: unknown, maxDepth: number): StrataError | null {
  const path: (string | number)[] = []
  const walk = (v: unknown, depth: number): StrataError | null => {
    switch (typeof v) {
      case 'string':
        return isStorableString(v)
          ? null
          : fail('STRATA_EVENT_INVALID_STRING', path, describeBadString(v))
      case 'number':
        return Number.isFinite(v) ? null : fail('STRATA_EVENT_NUMBER_OUT_OF_RANGE', path, String(v))
      case 'object': {
        if (v === null) return null
        if (depth >= maxDepth)
          return fail('STRATA_EVENT_TOO_DEEP', path, `more than ${maxDepth} levels`)
        if (Array.isArray(v)) {
          for (let i = 0; i < v.length; i++) {
            path.push(i)
            const e = walk(v[i], depth + 1)
            if (e) return e
            path.pop()
          }
          return null
        }
        for (const key of Object.keys(v)) {
          path.push(key)
          if (FORBIDDEN_KEYS.has(key)) return fail('STRATA_EVENT_FORBIDDEN_KEY', path, `key ${key}`)
          if (!isStorableString(key)) return fail('STRATA_EVENT_INVALID_STRING', path, 'in a key')
          const e = walk((v as Record<string, unknown>)[key], depth + 1)
          if (e) return e
          path.pop()
        }
        return null
      }
      default:
        return null
    }
  }
  return walk(value, 0)
}

function describeBadString(s: string): string {
  return s.includes('\u0000') ? 'NUL character (\\u0000)' : 'unpaired surrogate'
}

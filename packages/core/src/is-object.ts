/**
 * True for a plain object value: not null, not an array. Narrows to a string-keyed record so
 * validators can read fields off untrusted JSON without casts.
 */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

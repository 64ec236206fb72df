const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** A duration as milliseconds or a human string such as '250ms', '5m', '1h', '7d', '1.5s'. */
export type Duration = number | string

/** Parses a Duration into milliseconds; throws a RangeError naming the bad value. */
export function parseDuration(value: Duration, name = 'duration'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0)
      throw new RangeError(`${name}: expected a non-negative number of ms, got ${value}`)
    return value
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value)
  if (!m)
    throw new RangeError(
      `${name}: expected a duration like 250ms, 30s, 5m, 1h or 7d, got ${JSON.stringify(value)}`,
    )
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!)
}

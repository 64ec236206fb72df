// Instants in IANA time zones with Intl only. Imported as `@strata/core/time-zone`, not from the
// package index, and free of Node APIs: the dashboard bundles it for the browser.

const formatters = new Map<string, Intl.DateTimeFormat>()

/**
 * The `en-US` Intl.DateTimeFormat for `tz` with the options `variant` names, made when first
 * needed: building one is far slower than formatting with it. Use one variant name per set of
 * options. Throws a RangeError for a zone Intl does not know (and caches nothing then).
 */
export function zoneFormatter(
  tz: string,
  variant: string,
  options: () => Omit<Intl.DateTimeFormatOptions, 'timeZone'>,
): Intl.DateTimeFormat {
  const key = `${variant}|${tz}`
  let f = formatters.get(key)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { ...options(), timeZone: tz })
    formatters.set(key, f)
  }
  return f
}

/** Local date and time fields of an instant in a zone (month 1–12, hour 0–23). */
export interface WallClock {
  year: number
  month: number
  day: number
  hour: number
  minute: number
  second: number
}

/** The wall-clock fields of the instant `ms` in `tz`. */
export function wallClock(ms: number, tz: string): WallClock {
  const f = zoneFormatter(tz, 'parts', () => ({
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }))
  const w: WallClock = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 }
  for (const p of f.formatToParts(ms))
    if (p.type in w) w[p.type as keyof WallClock] = Number(p.value)
  return w
}

/**
 * Date.UTC for every year (month 1–12): Date.UTC itself reads years 0–99 as 1900–1999, so
 * 0099-01-01 would come out as 1999-01-01.
 */
export function utcMs(
  year: number,
  month: number,
  day: number,
  hour = 0,
  minute = 0,
  second = 0,
  millisecond = 0,
): number {
  const d = new Date(Date.UTC(2000, 0, 1, hour, minute, second, millisecond))
  d.setUTCFullYear(year, month - 1, day)
  return d.getTime()
}

/** The zone's offset from UTC at an instant, in ms (Paris in winter: +3 600 000). */
export function zoneOffsetMs(ms: number, tz: string): number {
  const w = wallClock(ms, tz)
  const asUtc = utcMs(w.year, w.month, w.day, w.hour, w.minute, w.second)
  return asUtc - Math.floor(ms / 1000) * 1000
}

/**
 * The runtime's own name for a zone (`Asia/Kolkata` → `Asia/Calcutta` where ICU still calls it
 * that), or undefined when Intl does not know the zone.
 */
export function canonicalTimeZone(tz: string): string | undefined {
  if (!tz || tz.length > 64) return undefined
  try {
    return zoneFormatter(tz, 'zone', () => ({})).resolvedOptions().timeZone
  } catch {
    return undefined
  }
}

/** True for a zone name (IANA, or UTC) that Intl knows. */
export function isTimeZone(tz: string): boolean {
  return canonicalTimeZone(tz) !== undefined
}

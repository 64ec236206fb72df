// Calendar dates (YYYY-MM-DD) in an IANA time zone ↔ instants, with Intl only (no date library:
// the bundle stays small, and the browser's tz database is the one the user expects).

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/
const DAY_MS = 86_400_000

const formatters = new Map<string, Intl.DateTimeFormat>()

/** Building an Intl.DateTimeFormat is slow: one per key, made when first needed. */
function formatter(key: string, options: () => Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  let f = formatters.get(key)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', options())
    formatters.set(key, f)
  }
  return f
}

function partsFormatter(tz: string): Intl.DateTimeFormat {
  return formatter(`parts|${tz}`, () => ({
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }))
}

/** Wall-clock fields of an instant in a zone. */
function wallClock(ms: number, tz: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of partsFormatter(tz).formatToParts(ms))
    if (p.type !== 'literal') out[p.type] = Number(p.value)
  return out
}

/** The zone's offset from UTC at an instant, in ms (Paris in winter: +3 600 000). */
export function zoneOffsetMs(ms: number, tz: string): number {
  const w = wallClock(ms, tz)
  const asUtc = Date.UTC(w.year!, w.month! - 1, w.day!, w.hour!, w.minute!, w.second!)
  return asUtc - Math.floor(ms / 1000) * 1000
}

/** True for a valid IANA zone name (or UTC) that this runtime knows. */
export function isTimeZone(tz: string): boolean {
  return canonicalTimeZone(tz) !== undefined
}

/**
 * The runtime's own name for a zone (`Asia/Kolkata` → `Asia/Calcutta` where ICU still calls it
 * that): the name in its picker list, and the one the service's list has too. Undefined when
 * the zone is unknown.
 */
export function canonicalTimeZone(tz: string): string | undefined {
  if (!tz || tz.length > 64) return undefined
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone
  } catch {
    return undefined
  }
}

/** True for a real calendar date written YYYY-MM-DD. */
export function isDate(s: string): boolean {
  const m = DATE.exec(s)
  if (!m) return false
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])))
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCDate() === Number(m[3])
}

/** The date plus n days (calendar arithmetic, no zone involved). */
export function addDays(date: string, n: number): string {
  const m = DATE.exec(date)
  if (!m) throw new RangeError(`not a date: ${date}`)
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + n * DAY_MS)
    .toISOString()
    .slice(0, 10)
}

/** The calendar date of an instant in a zone. */
export function dateIn(ms: number, tz: string): string {
  const w = wallClock(ms, tz)
  return `${String(w.year).padStart(4, '0')}-${String(w.month).padStart(2, '0')}-${String(w.day).padStart(2, '0')}`
}

/**
 * The instant at which `date` starts in `tz` (local midnight). Each offset the zone has around
 * that day gives a candidate; the earliest that falls on the date wins. So a DST change near
 * midnight is handled, and a midnight that does not exist (a zone that springs forward at
 * 00:00) becomes the first instant of the day.
 */
export function startOfDay(date: string, tz: string): number {
  const m = DATE.exec(date)
  if (!m) throw new RangeError(`not a date: ${date}`)
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))
  const offsets = new Set([-DAY_MS, 0, DAY_MS].map((d) => zoneOffsetMs(wall + d, tz)))
  const onDate = [...offsets].map((o) => wall - o).filter((t) => dateIn(t, tz) === date)
  return onDate.length ? Math.min(...onDate) : wall - zoneOffsetMs(wall, tz)
}

/** `[from, to)` instants for an inclusive range of calendar dates in a zone. */
export function dayRange(from: string, to: string, tz: string): { from: string; to: string } {
  return {
    from: new Date(startOfDay(from, tz)).toISOString(),
    to: new Date(startOfDay(addDays(to, 1), tz)).toISOString(),
  }
}

/** Whole days from `from` to `to` (calendar dates). */
export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS)
}

/** An instant for people: "Nov 28, 2026, 23:59:20" in the chosen zone. */
export function formatInstant(iso: string | number, tz: string, withSeconds = true): string {
  const f = formatter(`display|${tz}|${withSeconds}`, () => ({
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    ...(withSeconds ? { second: '2-digit' } : {}),
  }))
  const ms = typeof iso === 'number' ? iso : Date.parse(iso)
  return Number.isFinite(ms) ? f.format(ms) : String(iso)
}

/** The zones offered in the picker: the runtime's list, UTC first. */
export function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] }
  const list = intl.supportedValuesOf?.('timeZone') ?? []
  return ['UTC', ...list.filter((z) => z !== 'UTC')]
}

/** The browser's own zone, or UTC when it cannot say. */
export function localTimeZone(): string {
  return canonicalTimeZone(Intl.DateTimeFormat().resolvedOptions().timeZone ?? '') ?? 'UTC'
}

/**
 * A chart's time-axis label in `tz`: "Nov 20" for day steps and local midnights, "14:00"
 * within a day (24-hour clock, as in the tables).
 */
export function axisLabel(ms: number, tz: string, daySteps: boolean): string {
  const w = wallClock(ms, tz)
  const day = daySteps || (w.hour === 0 && w.minute === 0)
  return formatter(`axis|${tz}|${day}`, () =>
    day
      ? { timeZone: tz, month: 'short', day: 'numeric' }
      : { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' },
  ).format(ms)
}

// Calendar dates (YYYY-MM-DD) in an IANA time zone ↔ instants, with Intl only (no date library:
// the bundle stays small, and the browser's tz database is the one the user expects).
import {
  canonicalTimeZone,
  isTimeZone,
  wallClock,
  zoneFormatter,
  zoneOffsetMs,
} from '@strata/core/time-zone'

// canonicalTimeZone gives the runtime's own name for a zone: the name in the picker's list, and
// the one the service's list has too.
export { canonicalTimeZone, isTimeZone, zoneOffsetMs }

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/
const DAY_MS = 86_400_000

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
  const f = zoneFormatter(tz, `display|${withSeconds}`, () => ({
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
  return zoneFormatter(tz, `axis|${day}`, () =>
    day
      ? { month: 'short', day: 'numeric' }
      : { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' },
  ).format(ms)
}

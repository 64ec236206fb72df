import { isTimeZone, zoneFormatter } from '@strata/core/time-zone'
import { analyticsErrors } from './errors.js'

let zones: Set<string> | null = null
const ZONE_NAME = /^[A-Za-z]+(?:\/[A-Za-z0-9_+-]+){1,2}$/

/**
 * An IANA zone name this runtime knows, or UTC. Intl.supportedValuesOf lists one canonical
 * name per zone, and on Node 20 that is still the old one (Asia/Calcutta, Europe/Kiev), so a
 * current name it does not list (Asia/Kolkata, Europe/Kyiv) is accepted when Intl resolves it.
 */
export function isSupportedTimeZone(tz: string): boolean {
  zones ??= new Set([...Intl.supportedValuesOf('timeZone'), 'UTC', 'Etc/UTC'])
  if (zones.has(tz)) return true
  if (tz.length > 64 || !ZONE_NAME.test(tz) || !isTimeZone(tz)) return false
  zones.add(tz)
  return true
}

export function parseTimeZone(value: unknown): string {
  if (value === undefined || value === '') return 'UTC'
  if (typeof value !== 'string' || !isSupportedTimeZone(value))
    throw analyticsErrors.create('STRATA_ANALYTICS_INVALID_TIMEZONE', {
      message: `tz ${JSON.stringify(value)} is not an IANA time zone name (e.g. America/New_York, Asia/Kolkata, UTC)`,
    })
  return value
}

// Fields and offset ("GMT-05:00") from one formatToParts call, rather than wallClock plus
// zoneOffsetMs (two).
const isoFormatter = (tz: string): Intl.DateTimeFormat =>
  zoneFormatter(tz, 'iso-offset', () => ({
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'longOffset',
  }))

/**
 * An instant as ISO 8601 local time in `tz` with its offset at that instant, e.g.
 * `2026-03-08T00:00:00-05:00`; milliseconds are kept when not zero.
 */
export function isoInZone(ms: number, tz: string): string {
  const parts: Record<string, string> = {}
  for (const p of isoFormatter(tz).formatToParts(ms)) parts[p.type] = p.value
  const off = parts.timeZoneName === 'GMT' ? '+00:00' : parts.timeZoneName!.slice(3)
  const frac = ms % 1000 === 0 ? '' : `.${String(((ms % 1000) + 1000) % 1000).padStart(3, '0')}`
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${frac}${off === '+00:00' && tz === 'UTC' ? 'Z' : off}`
}

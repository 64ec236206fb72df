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

const OFFSET = /^GMT([+-])(\d{2}):(\d{2})(?::(\d{2}))?$/

/**
 * An instant as ISO 8601 local time in `tz` with its offset at that instant, e.g.
 * `2026-03-08T00:00:00-05:00`; milliseconds are kept when not zero. Only the offset comes from
 * Intl: its fields write year 1 as "1" and 1 BC as "1" too, so the local time is the instant
 * shifted by the offset. An offset with seconds (local mean time, e.g. Paris before 1911:
 * +00:09:21) has no ISO 8601 form: such instants are written in UTC.
 */
export function isoInZone(ms: number, tz: string): string {
  let name = 'GMT'
  for (const p of isoFormatter(tz).formatToParts(ms)) if (p.type === 'timeZoneName') name = p.value
  const m = OFFSET.exec(name)
  const frac = ms % 1000 === 0 ? '' : `.${String(((ms % 1000) + 1000) % 1000).padStart(3, '0')}`
  const at = (shifted: number) => new Date(shifted).toISOString().slice(0, -5) + frac
  if (!m) return `${at(ms)}${tz === 'UTC' ? 'Z' : '+00:00'}`
  if (m[4] !== undefined && m[4] !== '00') return `${at(ms)}Z`
  const offsetMs = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 3_600_000 + Number(m[3]) * 60_000)
  return `${at(ms + offsetMs)}${m[1]}${m[2]}:${m[3]}`
}

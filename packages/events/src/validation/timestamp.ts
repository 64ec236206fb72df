import { utcMs } from '@strata/core/time-zone'

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)$/

function daysInMonth(year: number, month: number): number {
  return new Date(utcMs(year, month + 1, 0)).getUTCDate()
}

/**
 * Parses a strict ISO 8601 date-time with an explicit offset into epoch ms, or returns NaN.
 * Stricter than Date.parse, which accepts 2026-02-30, local times without offset, and
 * free-form strings; years beyond 9999, "infinity" and epoch numbers are all NaN here.
 */
export function parseIsoTimestamp(s: string): number {
  const m = ISO.exec(s)
  if (!m) return NaN
  const year = Number(m[1])
  const month = Number(m[2])
  const day = Number(m[3])
  const hour = Number(m[4])
  const minute = Number(m[5])
  const second = m[6] === undefined ? 0 : Number(m[6])
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return NaN
  if (hour > 23 || minute > 59 || second > 59) return NaN
  const frac = m[7] === undefined ? 0 : Number(`0.${m[7]}`) * 1000
  let offsetMin = 0
  const tz = m[8]!
  if (tz !== 'Z' && tz !== 'z') {
    const sign = tz[0] === '-' ? -1 : 1
    const digits = tz.slice(1).replace(':', '')
    const oh = Number(digits.slice(0, 2))
    const om = digits.length > 2 ? Number(digits.slice(2, 4)) : 0
    if (oh > 18 || om > 59) return NaN
    offsetMin = sign * (oh * 60 + om)
  }
  const utc = utcMs(year, month, day, hour, minute, second) + Math.floor(frac)
  return utc - offsetMin * 60_000
}

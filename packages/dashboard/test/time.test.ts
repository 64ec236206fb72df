import { describe, expect, it } from 'vitest'
import {
  addDays,
  axisLabel,
  dateIn,
  dayRange,
  daysBetween,
  formatInstant,
  isDate,
  isTimeZone,
  startOfDay,
  zoneOffsetMs,
} from '../src/lib/time.js'

const H = 3_600_000

describe('time zones with Intl', () => {
  it('knows zone offsets, DST included', () => {
    expect(zoneOffsetMs(Date.parse('2026-01-15T12:00:00Z'), 'Europe/Paris')).toBe(H)
    expect(zoneOffsetMs(Date.parse('2026-07-15T12:00:00Z'), 'Europe/Paris')).toBe(2 * H)
    expect(zoneOffsetMs(Date.parse('2026-07-15T12:00:00Z'), 'America/New_York')).toBe(-4 * H)
    expect(zoneOffsetMs(Date.parse('2026-07-15T12:00:00Z'), 'Asia/Kolkata')).toBe(5.5 * H)
    expect(zoneOffsetMs(Date.parse('2026-07-15T12:00:00Z'), 'UTC')).toBe(0)
  })

  it('finds local midnight as an instant', () => {
    expect(new Date(startOfDay('2026-11-20', 'UTC')).toISOString()).toBe('2026-11-20T00:00:00.000Z')
    expect(new Date(startOfDay('2026-11-20', 'America/New_York')).toISOString()).toBe(
      '2026-11-20T05:00:00.000Z',
    )
    expect(new Date(startOfDay('2026-07-01', 'Asia/Kolkata')).toISOString()).toBe(
      '2026-06-30T18:30:00.000Z',
    )
    // The days DST starts and ends in Paris: midnight still has the winter / summer offset.
    expect(new Date(startOfDay('2026-03-29', 'Europe/Paris')).toISOString()).toBe(
      '2026-03-28T23:00:00.000Z',
    )
    expect(new Date(startOfDay('2026-10-25', 'Europe/Paris')).toISOString()).toBe(
      '2026-10-24T22:00:00.000Z',
    )
    // Santiago springs forward at midnight: the day starts at 01:00 local, the first instant.
    const t = startOfDay('2026-09-06', 'America/Santiago')
    expect(dateIn(t, 'America/Santiago')).toBe('2026-09-06')
    expect(dateIn(t - 1, 'America/Santiago')).toBe('2026-09-05')
  })

  it('turns an inclusive range of dates into a half-open range of instants', () => {
    expect(dayRange('2026-11-20', '2026-11-27', 'America/New_York')).toEqual({
      from: '2026-11-20T05:00:00.000Z',
      to: '2026-11-28T05:00:00.000Z',
    })
    // Spans the end of DST in New York (Nov 1): 23:00 UTC offset changes from -4 to -5.
    expect(dayRange('2026-10-31', '2026-11-01', 'America/New_York')).toEqual({
      from: '2026-10-31T04:00:00.000Z',
      to: '2026-11-02T05:00:00.000Z',
    })
  })

  it('does calendar arithmetic and validation', () => {
    expect(addDays('2026-02-28', 1)).toBe('2026-03-01')
    expect(addDays('2026-01-01', -1)).toBe('2025-12-31')
    expect(daysBetween('2026-11-01', '2026-11-30')).toBe(29)
    expect(isDate('2026-02-29')).toBe(false)
    expect(isDate('2028-02-29')).toBe(true)
    expect(isDate('2026-1-1')).toBe(false)
    expect(isTimeZone('Europe/Paris')).toBe(true)
    expect(isTimeZone('UTC')).toBe(true)
    expect(isTimeZone('Mars/Olympus')).toBe(false)
    expect(isTimeZone('')).toBe(false)
  })

  it('labels chart axes in the zone, 24-hour within a day', () => {
    const t = Date.parse('2026-11-20T13:00:00Z')
    expect(axisLabel(t, 'UTC', false)).toBe('13:00')
    expect(axisLabel(t, 'Asia/Tokyo', false)).toBe('22:00')
    expect(axisLabel(t, 'UTC', true)).toBe('Nov 20')
    // Local midnight gets the date even with hour steps.
    expect(axisLabel(Date.parse('2026-11-20T15:00:00Z'), 'Asia/Tokyo', false)).toBe('Nov 21')
  })

  it('formats instants in the chosen zone', () => {
    expect(formatInstant('2026-11-28T23:59:20.104Z', 'UTC')).toBe('Nov 28, 2026, 23:59:20')
    expect(formatInstant('2026-11-28T23:59:20.104Z', 'Asia/Tokyo', false)).toBe(
      'Nov 29, 2026, 08:59',
    )
    expect(formatInstant('not a date', 'UTC')).toBe('not a date')
  })
})

import { describe, expect, it } from 'vitest'
import {
  canonicalTimeZone,
  isTimeZone,
  wallClock,
  zoneFormatter,
  zoneOffsetMs,
} from '@strata/core/time-zone'

const H = 3_600_000

describe('time zones', () => {
  it('makes one formatter per zone and variant', () => {
    const opts = () => ({ hour: '2-digit' as const })
    const f = zoneFormatter('Europe/Paris', 'test-hour', opts)
    expect(zoneFormatter('Europe/Paris', 'test-hour', opts)).toBe(f)
    expect(zoneFormatter('Asia/Tokyo', 'test-hour', opts)).not.toBe(f)
    expect(f.resolvedOptions().timeZone).toBe('Europe/Paris')
  })

  it('throws for a zone Intl does not know', () => {
    expect(() => zoneFormatter('Mars/Olympus', 'test-hour', () => ({}))).toThrow(RangeError)
    expect(isTimeZone('Mars/Olympus')).toBe(false)
    expect(isTimeZone('')).toBe(false)
    expect(isTimeZone('America/New_York')).toBe(true)
    expect(canonicalTimeZone('UTC')).toBe('UTC')
  })

  it('reads wall-clock fields and offsets, DST included', () => {
    const ms = Date.parse('2026-07-15T23:30:05Z')
    expect(wallClock(ms, 'Europe/Paris')).toEqual({
      year: 2026,
      month: 7,
      day: 16,
      hour: 1,
      minute: 30,
      second: 5,
    })
    expect(zoneOffsetMs(ms, 'Europe/Paris')).toBe(2 * H)
    expect(zoneOffsetMs(Date.parse('2026-01-15T12:00:00Z'), 'Europe/Paris')).toBe(H)
    expect(zoneOffsetMs(ms, 'Asia/Kolkata')).toBe(5.5 * H)
  })
})

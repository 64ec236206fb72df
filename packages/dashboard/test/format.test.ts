import { describe, expect, it } from 'vitest'
import {
  formatBytes,
  formatCount,
  formatDuration,
  formatMs,
  formatPercent,
  formatRate,
  shares,
  shortId,
} from '../src/lib/format.js'

describe('formatting', () => {
  it('counts with thousands separators', () => {
    expect(formatCount(97021)).toBe('97,021')
    expect(formatCount(0)).toBe('0')
    expect(formatCount(1234567.6)).toBe('1,234,568')
    expect(formatCount(null)).toBe('—')
    expect(formatCount(Number.NaN)).toBe('—')
  })

  it('percentages and durations', () => {
    expect(formatPercent(0.9035054266602076)).toBe('90.4 %')
    expect(formatPercent(1)).toBe('100.0 %')
    expect(formatPercent(0.5, 0)).toBe('50 %')
    expect(formatPercent(null)).toBe('—')
    expect(formatDuration(14495.169)).toBe('4 h 1 min')
    expect(formatDuration(42)).toBe('42 s')
    expect(formatDuration(3600)).toBe('1 h')
    expect(formatDuration(90061)).toBe('1 d 1 h')
    expect(formatDuration(125)).toBe('2 min 5 s')
    expect(formatDuration(null)).toBe('—')
  })

  it('milliseconds, bytes and rates', () => {
    expect(formatMs(0.0729)).toBe('0.07 ms')
    expect(formatMs(37.316)).toBe('37.3 ms')
    expect(formatMs(2150)).toBe('2.15 s')
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(5514)).toBe('5.4 KiB')
    expect(formatBytes(113098752)).toBe('107.9 MiB')
    expect(formatRate(12345.6)).toBe('12,346 rows/s')
    expect(formatRate(null)).toBe('—')
  })

  it('shares sorts largest first and sums to one', () => {
    const s = shares({ b: 1, a: 3, c: 0 })
    expect(s).toEqual([
      ['a', 3, 0.75],
      ['b', 1, 0.25],
      ['c', 0, 0],
    ])
    expect(shares({})).toEqual([])
    expect(shares({ x: 0 })).toEqual([['x', 0, 0]])
  })

  it('short ids', () => {
    expect(shortId('8899b2ab-fd3f-4a3a-b963-f52e52f2b3e8')).toBe('8899b2ab')
    expect(shortId('job-1')).toBe('job-1')
  })
})

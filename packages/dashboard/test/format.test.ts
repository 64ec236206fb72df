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

type Case = [value: number | null, text: string]

// Each one-number formatter: the text it gives for each value (null and NaN: a dash).
const formatters: [name: string, format: (v: number | null) => string, cases: Case[]][] = [
  [
    'counts with thousands separators',
    formatCount,
    [
      [97021, '97,021'],
      [0, '0'],
      [1234567.6, '1,234,568'],
      [null, '—'],
      [Number.NaN, '—'],
    ],
  ],
  [
    'percentages (one decimal)',
    formatPercent,
    [
      [0.9035054266602076, '90.4 %'],
      [1, '100.0 %'],
      [null, '—'],
    ],
  ],
  [
    'durations in seconds',
    formatDuration,
    [
      [14495.169, '4 h 1 min'],
      [42, '42 s'],
      [3600, '1 h'],
      [90061, '1 d 1 h'],
      [125, '2 min 5 s'],
      [null, '—'],
    ],
  ],
  [
    'milliseconds',
    formatMs,
    [
      [0.0729, '0.07 ms'],
      [37.316, '37.3 ms'],
      [2150, '2.15 s'],
    ],
  ],
  [
    'bytes',
    formatBytes,
    [
      [512, '512 B'],
      [5514, '5.4 KiB'],
      [113098752, '107.9 MiB'],
    ],
  ],
  [
    'rates',
    formatRate,
    [
      [12345.6, '12,346 rows/s'],
      [null, '—'],
    ],
  ],
]

describe('formatting', () => {
  describe.each(formatters)('%s', (_name, format, cases) => {
    it.each(cases)('%s → %s', (value, text) => {
      expect(format(value)).toBe(text)
    })
  })

  it('percentages with fewer digits', () => {
    expect(formatPercent(0.5, 0)).toBe('50 %')
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

import { describe, expect, it } from 'vitest'
import { formatNumber, renderDoc, renderTable } from '../src/update-doc.js'

describe('benchmark doc generator', () => {
  it('renders one table per benchmark with baseline, ratio, goal and verdict', () => {
    const doc = renderDoc([
      {
        name: 'cache',
        params: { quick: true },
        env: { node: 'v20', cpus: 2, loadavg: [1.5, 1, 0.5] },
        results: [
          {
            metric: 'L1 hit',
            value: 2_500_000,
            unit: 'ops/s',
            baseline: 'bentocache',
            baselineValue: 80_000,
            ratio: 31.25,
            goal: '>= 20x',
            pass: true,
          },
          { metric: 'p99 | pipe', value: 0.0123, unit: 'µs', pass: false },
        ],
        notes: ['machine was busy'],
      },
    ])
    expect(doc).toContain('## cache')
    expect(doc).toContain(
      '| L1 hit | 2,500,000 | ops/s | bentocache | 80,000 | 31.3× | >= 20x | yes |',
    )
    expect(doc).toContain('p99 \\| pipe')
    expect(doc).toContain('**no**')
    expect(doc).toContain('loadavg: 1.5/1/0.5')
    expect(doc).toContain('- machine was busy')
    expect(doc).toMatch(/shared 2-core machine/)
  })

  it('formats numbers by magnitude', () => {
    expect(formatNumber(1234567.8)).toBe('1,234,568')
    expect(formatNumber(12.345)).toBe('12.3')
    expect(formatNumber(1.2345)).toBe('1.23')
    expect(formatNumber(0.012345)).toBe('0.012')
    expect(formatNumber(undefined)).toBe('')
    expect(renderTable([]).split('\n')).toHaveLength(2)
  })
})

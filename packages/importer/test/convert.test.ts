import { describe, expect, it } from 'vitest'
import { compileConverter } from '../src/convert.js'
import { isJson } from '../src/json-validate.js'
import { validateSpec } from '../src/spec.js'

const converter = (type: string) =>
  compileConverter(
    validateSpec({
      source: { format: 'csv', path: 'x.csv' },
      target: { table: 't' },
      columns: { v: { from: 'v', type } },
    }),
    ['v'],
  )
const conv = (type: string, v: string) => {
  const r = converter(type).convert({ line: 2, fields: [v] })
  return r.ok ? r.values[0] : r.reject.code
}

describe('value fast paths agree with the general parsers', () => {
  it('passes canonical instants through and checks their ranges', () => {
    expect(conv('timestamp', '2021-02-28T10:00:00.123Z')).toBe('2021-02-28T10:00:00.123Z')
    expect(conv('timestamp', '2020-02-29 23:59:59+05:30')).toBe('2020-02-29 23:59:59+05:30')
    expect(conv('timestamp', '2021-02-29T10:00:00Z')).toBe('STRATA_IMPORT_INVALID_VALUE')
    expect(conv('timestamp', '2021-04-31T10:00:00Z')).toBe('STRATA_IMPORT_INVALID_VALUE')
    expect(conv('timestamp', '2021-01-01T24:00:00Z')).toBe('STRATA_IMPORT_INVALID_VALUE')
    // Not the fast form (7 fraction digits, no seconds): the general parser canonicalises.
    expect(conv('timestamp', '2021-01-01T10:00:00.1234567Z')).toBe(
      '2021-01-01 10:00:00.123456+00:00',
    )
    expect(conv('timestamp', '2021-01-01T10:00Z')).toBe('2021-01-01 10:00:00+00:00')
  })

  it('passes short canonical integers through and still range-checks the rest', () => {
    expect(conv('int', '-123')).toBe('-123')
    expect(conv('int', '0042')).toBe('42')
    expect(conv('int', '2147483648')).toBe('STRATA_IMPORT_INVALID_VALUE')
    expect(conv('bigint', '9223372036854775807')).toBe('9223372036854775807')
    expect(conv('bigint', '9223372036854775808')).toBe('STRATA_IMPORT_INVALID_VALUE')
    expect(conv('bigint', ' 7 ')).toBe('7')
  })
})

describe('isJson', () => {
  it('accepts exactly what JSON.parse accepts (seeded random near-JSON texts)', () => {
    let a = 11
    const rnd = (): number => {
      a = (a * 1103515245 + 12345) & 0x7fffffff
      return a / 0x7fffffff
    }
    const parts = [
      '{',
      '}',
      '[',
      ']',
      '"',
      '\\',
      'u',
      '0',
      '1',
      '-',
      '.',
      'e',
      '+',
      ',',
      ':',
      ' ',
      'true',
      'null',
      'fals',
      'a',
      '"k":',
      '\n',
      '\u0001',
      '00',
      '1e5',
      '"\\u12g4"',
      '"\\n"',
    ]
    const fixed = [
      '{"a":[1,-2.5e+3,true,null,{"b":"\\u00e9\\n"}]}',
      ' [ ] ',
      '"x"',
      '0',
      '-0.1E-2',
      '"a\u0001"',
      '"\\x"',
      '01',
      '1.',
      '-',
      '{"a" 1}',
      '[1,]',
      '{,}',
      'tru',
      '"\\u12"',
      '1 2',
    ]
    let checked = 0
    const wrong: string[] = []
    for (let t = 0; t < 8000; t++) {
      let s = ''
      if (t < fixed.length) s = fixed[t]!
      else {
        const n = Math.floor(rnd() * 8)
        for (let i = 0; i < n; i++) s += parts[Math.floor(rnd() * parts.length)]
      }
      let want = true
      try {
        JSON.parse(s)
      } catch {
        want = false
      }
      if (want) checked++
      if (isJson(s) !== want) wrong.push(s)
    }
    expect(wrong).toEqual([])
    expect(checked).toBeGreaterThan(100)
    expect(isJson('['.repeat(600) + ']'.repeat(600))).toBe(true)
    expect(isJson('['.repeat(600) + ']'.repeat(599))).toBe(false)
  })
})

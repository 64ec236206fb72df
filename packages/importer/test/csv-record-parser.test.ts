import { seededRandom } from '@strata/core'
import { parse } from 'csv-parse/sync'
import { describe, expect, it } from 'vitest'
import { CsvRecordParser } from '../src/sources/csv-record-parser.js'

type Opts = { delimiter: string; quote: string; escape: string }

/** What csv-parse yields with the importer's options: records, or an error for an unclosed quote. */
function reference(text: string, o: Opts): { records: string[][]; unclosed: boolean } {
  let unclosed = false
  const records = parse(text, {
    ...o,
    relax_quotes: true,
    relax_column_count: true,
    skip_empty_lines: false,
    skip_records_with_error: true,
    on_skip: () => {
      unclosed = true
      return undefined
    },
  }) as string[][]
  return { records, unclosed }
}

function ours(text: string, o: Opts, cuts: number[]): { records: string[][]; unclosed: boolean } {
  const p = new CsvRecordParser(o)
  const records: string[][] = []
  let at = 0
  for (const c of [...cuts, text.length]) {
    p.push(text.slice(at, c), records)
    at = c
  }
  p.end(records)
  return { records, unclosed: p.unclosedQuote }
}

describe('CsvRecordParser', () => {
  it('splits plain, quoted, escaped and multi-line fields', () => {
    const o = { delimiter: ',', quote: '"', escape: '"' }
    expect(ours('a,b\r\n"x ""y""","1\r\n2"\r\n,\r\n', o, [3, 9])).toEqual({
      records: [
        ['a', 'b'],
        ['x "y"', '1\r\n2'],
        ['', ''],
      ],
      unclosed: false,
    })
    expect(ours('a,"open\n', o, [])).toEqual({ records: [], unclosed: true })
  })

  // Seeded differential test: random texts over the characters that matter, cut into random
  // chunks, must give exactly csv-parse's records (and its unclosed-quote error).
  for (const o of [
    { delimiter: ',', quote: '"', escape: '"' },
    { delimiter: ';', quote: "'", escape: '\\' },
  ]) {
    it(`matches csv-parse on random input (delimiter ${o.delimiter}, escape ${o.escape})`, () => {
      const rnd = seededRandom(7)
      const alphabet = ['a', 'b', 'é', o.delimiter, o.quote, o.escape, '\n', '\r', '\r\n', ' ']
      for (let t = 0; t < 3000; t++) {
        const len = Math.floor(rnd() * 30)
        let text = ''
        for (let i = 0; i < len; i++) text += alphabet[Math.floor(rnd() * alphabet.length)]
        const cuts = [...new Set([0, 1, 2].map(() => Math.floor(rnd() * (text.length + 1))))].sort(
          (a, b) => a - b,
        )
        const want = reference(text, o)
        const got = ours(text, o, cuts)
        // Records before an unclosed quote are emitted alike; csv-parse drops the broken one.
        expect({ text, ...got }).toEqual({ text, ...want })
      }
    })
  }
})

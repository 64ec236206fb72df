import { describe, expect, it } from 'vitest'
import { compileConverter, type SourceRecord } from '../src/convert.js'
import { readBatches } from '../src/read-batches.js'
import type { Source } from '../src/sources/source.js'
import { validateSpec } from '../src/spec.js'

const spec = validateSpec({
  source: { format: 'csv', path: 'x.csv' },
  target: { table: 't' },
  columns: { a: { from: 'a' } },
})

function source(values: string[]): Source {
  const recs: SourceRecord[] = values.map((v, i) => ({ line: i + 2, fields: [v] }))
  return {
    header: ['a'],
    async *records() {
      yield* recs
    },
    async *chunks() {
      yield recs.slice(0, 3)
      yield recs.slice(3)
    },
    async close() {},
  }
}

async function sizes(values: string[], opts: { skip?: number; rows: number; maxBytes?: number }) {
  const out: number[][] = []
  for await (const b of readBatches(source(values), compileConverter(spec, ['a']), {
    skip: opts.skip ?? 0,
    batchSize: () => opts.rows,
    ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}),
  }))
    out.push(b.rows.map((r) => r.line))
  return out
}

describe('readBatches', () => {
  it('closes a batch at the row limit or at maxBytes of source text, whichever comes first', async () => {
    const wide = ['x'.repeat(10), 'y'.repeat(10), 'z'.repeat(10), 'w', 'v', 'u']
    expect(await sizes(wide, { rows: 4 })).toEqual([
      [2, 3, 4, 5],
      [6, 7],
    ])
    expect(await sizes(wide, { rows: 4, maxBytes: 15 })).toEqual([
      [2, 3],
      [4, 5, 6, 7],
    ])
  })

  it('skips the first records across reads (resume)', async () => {
    expect(await sizes(['a', 'b', 'c', 'd', 'e'], { rows: 2, skip: 4 })).toEqual([[6]])
  })
})

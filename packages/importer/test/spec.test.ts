import { describe, expect, it } from 'vitest'
import { importErrors, validateSpec } from '@strata/importer'

const base = {
  source: { format: 'csv', path: 'a.csv' },
  target: { table: 't' },
  columns: { a: {} },
}

function errorOf(spec: unknown): { code: string; message: string; field?: string } {
  try {
    validateSpec(spec)
  } catch (err) {
    expect(importErrors.is(err, 'STRATA_IMPORT_INVALID_SPEC')).toBe(true)
    const e = err as { code: string; message: string; details: { field: string } }
    return { code: e.code, message: e.message, field: e.details.field }
  }
  throw new Error('expected validateSpec to throw')
}

describe('validateSpec', () => {
  it('applies defaults', () => {
    const s = validateSpec(base)
    expect(s.target).toEqual({ table: 't', schema: 'public', mode: 'insert', key: [] })
    expect(s.batch).toEqual({
      initial: 1000,
      min: 100,
      max: 10000,
      targetMs: 5000,
      maxBytes: 1024 * 1024,
    })
    expect(s.errors.maxErrorRate).toBe(0.1)
    expect(s.columns.a!.type).toBe('text')
  })

  it.each([
    [{ ...base, source: { format: 'xml', path: 'a' } }, 'source.format'],
    [{ ...base, source: { format: 'csv' } }, 'source.path'],
    [{ ...base, source: { format: 'csv', path: 'a', delimiter: ';;' } }, 'source.delimiter'],
    [{ ...base, source: { format: 'csv', path: 'a', encoding: 'utf16' } }, 'source.encoding'],
    [{ ...base, source: { format: 'csv', path: 'a', bogus: 1 } }, 'source.bogus'],
    [{ ...base, source: { format: 'postgres', query: 'DELETE FROM x' } }, 'source.query'],
    [{ ...base, target: { table: 't', mode: 'merge' } }, 'target.mode'],
    [{ ...base, target: { table: 't', mode: 'upsert' } }, 'target.key'],
    [{ ...base, target: { table: 't', mode: 'upsert', key: ['zz'] } }, 'target.key'],
    [{ ...base, target: { table: 't', mode: 'archive', key: ['a'] } }, 'target.archiveFile'],
    [{ ...base, columns: {} }, 'columns'],
    [{ ...base, columns: { a: { type: 'money' } } }, 'columns.a.type'],
    [{ ...base, columns: { a: { type: 'enum' } } }, 'columns.a.values'],
    [{ ...base, columns: { a: { type: 'timestamp', tz: 'Mars/Base' } } }, 'columns.a.tz'],
    [{ ...base, columns: { a: { type: 'date', formats: ['DD/MM'] } } }, 'columns.a.formats'],
    [{ ...base, columns: { a: { transform: 'reverse' } } }, 'columns.a.transform'],
    [
      { ...base, columns: { a: { transform: ['trim', { regex: '(', replace: '' }] } } },
      'columns.a.transform[1].regex',
    ],
    [
      { ...base, columns: { a: { lookup: { table: 'o', column: 'c' } } } },
      'columns.a.lookup.returns',
    ],
    [{ ...base, errors: { maxErrorRate: 2 } }, 'errors.maxErrorRate'],
    [{ ...base, batch: { min: 500, max: 100 } }, 'batch.min'],
    [{ ...base, batch: { initial: 50, min: 100 } }, 'batch.initial'],
    [{ ...base, workers: 0 }, 'workers'],
  ])('names the bad field (%#)', (spec, field) => {
    const e = errorOf(spec)
    expect(e.field).toBe(field)
    expect(e.message).toContain(field)
  })

  it('accepts custom transform functions from TS callers', () => {
    const s = validateSpec({ ...base, columns: { a: { transform: [(v: string | null) => v] } } })
    expect(typeof s.columns.a!.transforms[0]).toBe('function')
  })
})

import { describe, expect, it } from 'vitest'
import { csvCell, rejectLine } from '@strata/importer'

describe('reject file cells', () => {
  it.each([
    ['=SUM(A1)', "'=SUM(A1)"],
    ['+1', "'+1"],
    ['-2', "'-2"],
    ['@cmd', "'@cmd"],
    ['\tx', "'\tx"],
    ['\rx', `"'\rx"`],
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
  ])('%j → %j', (input, out) => {
    expect(csvCell(input)).toBe(out)
  })

  it('writes line, column, code, message, then the original fields', () => {
    expect(
      rejectLine({
        line: 7,
        column: 'email',
        code: 'STRATA_IMPORT_INVALID_VALUE',
        message: 'bad, really',
        fields: ['=1+1', 'x'],
      }),
    ).toBe(`7,email,STRATA_IMPORT_INVALID_VALUE,"bad, really",'=1+1,x\n`)
  })
})

import { describe, expect, it } from 'vitest'
import {
  assertPgText,
  decodeKeysetCursor,
  encodeKeysetCursor,
  findPgTextIssue,
  isPgText,
  pgTextProblem,
  toPgInet,
} from '../src/index.js'

const BAD = ['\u0000', 'a\u0000b', '\ud800', 'x\udfffy', 'end\ud83d', '\ude00start']
const GOOD = ['', 'plain', 'émoji 😀', '\ud83d\ude00', '$s0$ $$ \\N \t', 'x'.repeat(10_000)]

describe('PostgreSQL text checks', () => {
  it('refuses NUL and unpaired surrogates, accepts everything else', () => {
    for (const s of BAD) {
      expect(isPgText(s), JSON.stringify(s)).toBe(false)
      expect(pgTextProblem(s)).toMatch(/NUL|surrogate/)
    }
    for (const s of GOOD) {
      expect(isPgText(s), JSON.stringify(s)).toBe(true)
      expect(pgTextProblem(s)).toBeNull()
    }
  })

  it('assertPgText throws the caller’s error naming the field', () => {
    const toError = (m: string, f: string) => Object.assign(new Error(m), { field: f })
    expect(assertPgText('ok', 'userId', toError)).toBe('ok')
    expect(() => assertPgText('a\u0000', 'userId', toError)).toThrow(
      'userId contains a NUL character',
    )
  })

  it('finds the first bad string in a value, keys included, with its path', () => {
    expect(findPgTextIssue({ a: [1, 'ok', { b: 'x\u0000' }] })).toEqual({
      path: ['a', 2, 'b'],
      problem: expect.stringMatching(/NUL/),
    })
    expect(findPgTextIssue({ ok: { ['k\ud800']: 1 } })?.path).toEqual(['ok', 'k\ud800'])
    expect(findPgTextIssue({ a: ['x', 2, null, true], b: { c: 'é' } })).toBeNull()
  })

  it('cursors whose id PostgreSQL would refuse are not cursors', () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    for (const id of BAD)
      expect(decodeKeysetCursor(b64(['2026-11-29T14:01:39.000000Z', id]))).toBeNull()
    const ok = { ts: '2026-11-29T14:01:39.000000Z', id: 'm-😀' }
    expect(decodeKeysetCursor(encodeKeysetCursor(ok))).toEqual(ok)
  })
})

describe('toPgInet', () => {
  it('drops an IPv6 zone id, keeps addresses, refuses the rest', () => {
    expect(toPgInet('fe80::1%eth0')).toBe('fe80::1')
    expect(toPgInet('fe80::1%25eth0')).toBe('fe80::1')
    expect(toPgInet('::1%lo')).toBe('::1')
    expect(toPgInet('fe80::1%1')).toBe('fe80::1')
    for (const a of ['203.0.113.7', '::ffff:1.2.3.4', '2001:db8::1', '::'])
      expect(toPgInet(a)).toBe(a)
    for (const a of ['', 'nope', '1.2.3.4%eth0', 'fe80::1%', '999.1.1.1', 'fe80::1%\u0000'])
      expect(toPgInet(a), JSON.stringify(a)).toBeNull()
  })
})

import { describe, expect, it } from 'vitest'
import { decodeKeysetCursor, encodeKeysetCursor } from '../src/index.js'

describe('keyset cursors', () => {
  it('round-trips (timestamp with microseconds, any id)', () => {
    const c = { ts: '2026-11-29T14:01:39.123456Z', id: 'msg "1", ü' }
    expect(decodeKeysetCursor(encodeKeysetCursor(c))).toEqual(c)
  })

  it('refuses what it did not make', () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    for (const bad of [
      'not-a-cursor',
      b64(['2026-11-29T14:01:39Z', 'x']), // no microseconds
      b64(['2026-13-45T99:01:39.000000Z', 'x']), // not a date
      b64(['2026-11-29T14:01:39.000000Z']),
      b64(['2026-11-29T14:01:39.000000Z', 7]),
      b64({ ts: '2026-11-29T14:01:39.000000Z', id: 'x' }),
      'A'.repeat(2001),
    ])
      expect(decodeKeysetCursor(bad), bad.slice(0, 40)).toBeNull()
  })
})

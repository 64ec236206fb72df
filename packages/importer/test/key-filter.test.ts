import { describe, expect, it } from 'vitest'
import { KeyFilter } from '../src/key-filter.js'

describe('KeyFilter (Bloom filter of loaded keys)', () => {
  it('never forgets a key and rarely claims an unknown one', () => {
    const f = new KeyFilter(20, 7)
    for (let i = 0; i < 50_000; i++) f.add(String(i))
    for (let i = 0; i < 50_000; i++) expect(f.mightContain(String(i))).toBe(true)
    let falsePositives = 0
    for (let i = 50_000; i < 100_000; i++) if (f.mightContain(String(i))) falsePositives++
    // 2^20 bits for 50 k keys, 7 hashes: about 0.7 % expected.
    expect(falsePositives / 50_000).toBeLessThan(0.02)
  })
})

import { describe, expect, it } from 'vitest'
import { createCache } from '@strata/cache'

// Seeded PRNG + Zipf sampler: the trace is identical on every run, so the comparison is exact.
function mulberry32(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function zipfTrace(keys: number, s: number, length: number, seed: number): Uint32Array {
  const cdf = new Float64Array(keys)
  let sum = 0
  for (let i = 0; i < keys; i++) cdf[i] = sum += 1 / Math.pow(i + 1, s)
  const rnd = mulberry32(seed)
  const out = new Uint32Array(length)
  for (let j = 0; j < length; j++) {
    const u = rnd() * sum
    let lo = 0
    let hi = keys - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid]! < u) lo = mid + 1
      else hi = mid
    }
    out[j] = lo
  }
  return out
}

async function hitRatio(
  admission: 'lru' | 'tinylfu',
  trace: Uint32Array,
  size: number,
): Promise<number> {
  const c = createCache({
    namespace: `adm-${admission}`,
    metrics: false,
    l1: { maxEntries: size, admission },
  })
  for (const k of trace) await c.getOrSet(`k${k}`, () => k)
  const rate = c.stats().l1.hitRate
  await c.close()
  return rate
}

describe('L1 admission policy', () => {
  it('TinyLFU admission beats plain LRU on a seeded Zipf(0.9) trace', async () => {
    const trace = zipfTrace(20_000, 0.9, 60_000, 42)
    const lru = await hitRatio('lru', trace, 500)
    const tinylfu = await hitRatio('tinylfu', trace, 500)
    console.log(
      `Zipf(0.9), 20k keys, 60k requests, 500 entries: LRU ${(lru * 100).toFixed(2)} %, TinyLFU ${(tinylfu * 100).toFixed(2)} %`,
    )
    expect(tinylfu).toBeGreaterThan(lru + 0.02)
  })
})

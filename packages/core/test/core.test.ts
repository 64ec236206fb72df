import { describe, expect, it } from 'vitest'
import {
  defineErrors,
  parseDuration,
  parseRedisTarget,
  seededRandom,
  StrataError,
} from '@strata/core'

describe('defineErrors', () => {
  const errors = defineErrors('demo', { STRATA_DEMO_BAD: { status: 400, message: 'bad demo' } })
  it('creates typed errors with code, status and details', () => {
    const err = errors.create('STRATA_DEMO_BAD', { details: { field: 'x' } })
    expect(err).toBeInstanceOf(StrataError)
    expect(err.toJSON()).toEqual({
      code: 'STRATA_DEMO_BAD',
      message: 'bad demo',
      details: { field: 'x' },
    })
    expect(err.status).toBe(400)
    expect(errors.is(err, 'STRATA_DEMO_BAD')).toBe(true)
    expect(errors.is(new Error('x'))).toBe(false)
  })
  it('rejects codes that are not STRATA_ upper snake case', () => {
    expect(() => defineErrors('x', { 'strata-bad': { status: 400, message: '' } })).toThrow(
      /invalid error code/,
    )
  })
})

describe('parseDuration', () => {
  it.each([
    [250, 250],
    ['250ms', 250],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
    ['42', 42],
  ])('%s → %d ms', (input, ms) => expect(parseDuration(input)).toBe(ms))
  it.each(['', '5 minutes', '-1s', 'abc'])('rejects %j', (input) =>
    expect(() => parseDuration(input, 'ttl')).toThrow(/ttl/),
  )
  it('rejects negative and non-finite numbers', () => {
    expect(() => parseDuration(-1)).toThrow(RangeError)
    expect(() => parseDuration(Number.NaN)).toThrow(RangeError)
  })
})

describe('parseRedisTarget', () => {
  it('reads single-node URLs and bare host:port', () => {
    expect(parseRedisTarget('redis://cache:6380/2')).toEqual({
      cluster: false,
      url: 'redis://cache:6380/2',
    })
    expect(parseRedisTarget('rediss://u:p@cache')).toEqual({
      cluster: false,
      url: 'rediss://u:p@cache',
    })
    expect(parseRedisTarget('cache:6379')).toEqual({ cluster: false, url: 'redis://cache:6379' })
  })
  it('reads Cluster seed lists in both forms', () => {
    const nodes = [
      { host: 'a', port: 7000 },
      { host: 'b', port: 6379 },
    ]
    expect(parseRedisTarget('redis+cluster://a:7000,b')).toEqual({ cluster: true, nodes })
    expect(parseRedisTarget('a:7000, b:6379')).toEqual({ cluster: true, nodes })
    expect(parseRedisTarget('redis+cluster://:secret@a:7000,b')).toMatchObject({
      cluster: true,
      password: 'secret',
    })
  })
  it('rejects other schemes with a message naming the part', () => {
    expect(() => parseRedisTarget('http://x')).toThrow(/not a Redis address: "http:\/\/x"/)
    expect(() => parseRedisTarget('a:1,memcached://b')).toThrow(/memcached/)
  })
})

describe('seededRandom', () => {
  it('is reproducible per seed and uniform-ish in [0, 1)', () => {
    const a = seededRandom(42)
    const b = seededRandom(42)
    const xs = Array.from({ length: 10_000 }, () => a())
    expect(xs.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => b()))
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0)
    expect(Math.max(...xs)).toBeLessThan(1)
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length
    expect(mean).toBeGreaterThan(0.48)
    expect(mean).toBeLessThan(0.52)
    expect(seededRandom(43)()).not.toBe(seededRandom(42)())
  })
})

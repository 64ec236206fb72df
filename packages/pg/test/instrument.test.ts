import { describe, expect, it } from 'vitest'
import { Histogram, Registry } from 'prom-client'
import { parseSqlInfo, SqlInfoCache } from '../src/instrument/sql-info.js'
import { LogHistogram } from '../src/instrument/log-histogram.js'
import { FastHistogram } from '../src/instrument/fast-histogram.js'

describe('parseSqlInfo', () => {
  it.each([
    ['SELECT 1', 'SELECT', ''],
    ['select * from users where id = $1', 'SELECT', 'users'],
    ['SELECT u.id FROM public.users u JOIN orgs o ON o.id = u.org', 'SELECT', 'users'],
    ['  -- comment\n/* tag=1 */ SELECT a FROM "Events"', 'SELECT', 'Events'],
    ['INSERT INTO login_events (a) VALUES ($1)', 'INSERT', 'login_events'],
    ['insert into app.items select * from staging', 'INSERT', 'items'],
    ['UPDATE ONLY acc SET n = 1', 'UPDATE', 'acc'],
    ['DELETE FROM sessions WHERE expires_at < now()', 'DELETE', 'sessions'],
    ['WITH x AS (SELECT id FROM a) INSERT INTO b SELECT id FROM x', 'INSERT', 'b'],
    ['WITH x AS (SELECT id FROM a) SELECT * FROM x', 'SELECT', 'x'],
    ['COPY staging_users (a, b) FROM STDIN', 'COPY', 'staging_users'],
    ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DO NOTHING', 'MERGE', 't'],
    ['BEGIN ISOLATION LEVEL SERIALIZABLE', 'BEGIN', ''],
    ['(SELECT 1) UNION (SELECT 2)', 'SELECT', ''],
    ['', 'OTHER', ''],
  ])('%s → %s %s', (sql, operation, collection) => {
    expect(parseSqlInfo(sql)).toEqual({ operation, collection })
  })

  it('caches per text and stays bounded', () => {
    let made = 0
    const cache = new SqlInfoCache(3, (info) => {
      made++
      return info
    })
    cache.get('SELECT 1')
    cache.get('SELECT 1')
    expect(made).toBe(1)
    for (let i = 0; i < 10; i++) cache.get(`SELECT ${i} FROM t`)
    expect(cache.size).toBe(3)
    // Huge texts are classified but not kept.
    const huge = `INSERT INTO big VALUES ${Array.from({ length: 5000 }, (_, i) => `(${i})`).join(',')}`
    expect(cache.get(huge)).toEqual({ operation: 'INSERT', collection: 'big' })
    expect(cache.size).toBe(3)
  })
})

describe('LogHistogram', () => {
  it('reports percentiles within the documented 4.5 % bound', () => {
    const h = new LogHistogram()
    const values: number[] = []
    // Spread over 5 decades: 0.01 ms .. 1000 ms.
    for (let i = 0; i < 5000; i++) values.push(10 ** (-2 + (5 * i) / 5000))
    for (const v of values) h.record(v)
    values.sort((a, b) => a - b)
    for (const q of [0.5, 0.95, 0.99]) {
      const exact = values[Math.ceil(q * values.length) - 1]!
      expect(Math.abs(h.quantile(q) - exact) / exact).toBeLessThan(0.045)
    }
    expect(h.count).toBe(5000)
    expect(h.max).toBe(values[values.length - 1])
    expect(h.quantile(1)).toBeLessThanOrEqual(h.max)
  })

  it('is 0 when empty, and counts sub-microsecond values as 0', () => {
    const h = new LogHistogram()
    expect(h.quantile(0.5)).toBe(0)
    h.record(0)
    h.record(0.0001)
    expect(h.quantile(0.99)).toBe(0)
  })
})

describe('FastHistogram', () => {
  it('renders exactly like a prom-client Histogram with the same observations', async () => {
    const a = new Registry()
    const b = new Registry()
    const opts = {
      name: 'x_seconds',
      help: 'h',
      labelNames: ['op', 'table'],
      buckets: [0.001, 0.01, 0.1],
    }
    const fast = new FastHistogram({ ...opts, registers: [a] })
    const ref = new Histogram({ ...opts, registers: [b] })
    const obs: [Record<string, string>, number][] = [
      [{ op: 'SELECT', table: 'users' }, 0.0005],
      [{ op: 'SELECT', table: 'users' }, 0.01],
      [{ op: 'SELECT', table: 'users' }, 3],
      [{ op: 'INSERT', table: '' }, 0.05],
    ]
    for (const [labels, v] of obs) {
      fast.series(labels).observe(v)
      ref.observe(labels, v)
    }
    expect(await a.metrics()).toBe(await b.metrics())
    expect(await a.getMetricsAsJSON()).toEqual(await b.getMetricsAsJSON())
    // Same series object for the same labels.
    expect(fast.series({ op: 'SELECT', table: 'users' })).toBe(
      fast.series({ table: 'users', op: 'SELECT' }),
    )
  })
})

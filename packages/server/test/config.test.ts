import { describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { serverErrors } from '../src/errors.js'

function linesOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    expect(serverErrors.is(err, 'STRATA_CONFIG_INVALID')).toBe(true)
    return (err as { details: { lines: string[] } }).details.lines
  }
  throw new Error('expected loadConfig to throw')
}

describe('loadConfig', () => {
  it('has working defaults with an empty environment', () => {
    const c = loadConfig({})
    expect(c).toMatchObject({
      port: 3000,
      host: '0.0.0.0',
      databaseUrl: undefined,
      redisUrl: undefined,
      slowQueryThresholdMs: 100,
    })
    expect(c.dataDir).toBe('./.strata')
  })

  it('reads every documented variable', () => {
    const c = loadConfig({
      DATABASE_URL: 'postgres://u:p@db:5432/app',
      DATABASE_READ_URL: 'postgresql://replica/app',
      REDIS_URL: 'redis://cache:6379',
      PORT: '8080',
      HOST: '127.0.0.1',
      SLOW_QUERY_THRESHOLD_MS: '250',
      LOG_LEVEL: 'debug',
      CACHE_TTL_ANALYTICS: '10m',
      TRUST_PROXY: '10.0.0.0/8,127.0.0.1',
      STRATA_MIGRATE_ON_START: 'false',
    })
    expect(c).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      slowQueryThresholdMs: 250,
      logLevel: 'debug',
      migrateOnStart: false,
    })
    expect(c.cacheTtls).toEqual({ analytics: 600_000 })
    expect(c.trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1'])
  })

  it('accepts Redis Cluster forms', () => {
    expect(loadConfig({ REDIS_URL: 'redis+cluster://a:7000,b:7001' }).redisUrl).toBeDefined()
    expect(loadConfig({ REDIS_URL: 'a:7000,b:7001' }).redisUrl).toBe('a:7000,b:7001')
  })

  it('reports one line per invalid variable, naming it', () => {
    const lines = linesOf({
      PORT: 'eighty',
      DATABASE_URL: 'mysql://x',
      LOG_LEVEL: 'loud',
      CACHE_TTL_X: 'soon',
    })
    expect(lines).toHaveLength(4)
    expect(lines.find((l) => l.startsWith('PORT:'))).toMatch(/whole number.*"eighty"/)
    expect(lines.find((l) => l.startsWith('DATABASE_URL:'))).toMatch(/postgres/)
    expect(lines.find((l) => l.startsWith('LOG_LEVEL:'))).toBeDefined()
    expect(lines.find((l) => l.startsWith('CACHE_TTL_X:'))).toMatch(/duration/)
  })

  it('rejects out-of-range ports and short admin tokens', () => {
    expect(linesOf({ PORT: '70000' })[0]).toMatch(/^PORT: must be ≤ 65535/)
    expect(linesOf({ STRATA_ADMIN_TOKEN: 'short' })[0]).toMatch(
      /^STRATA_ADMIN_TOKEN: must be at least 16/,
    )
  })

  it('reads alert settings and rejects bad ones', () => {
    const c = loadConfig({
      STRATA_ALERT_WEBHOOK_URL: 'https://hooks.example/strata',
      STRATA_ALERT_POOL_UTILIZATION: '0.9',
      STRATA_ALERT_QUERY_P95_MS: '250',
    })
    expect(c.alertWebhookUrl).toBe('https://hooks.example/strata')
    expect(c.alertThresholds).toEqual({ poolUtilization: 0.9, queryP95Ms: 250 })
    const lines = linesOf({
      STRATA_ALERT_WEBHOOK_URL: 'ftp://x',
      STRATA_ALERT_HEAP_USED_RATIO: '1.5',
    })
    expect(lines).toHaveLength(2)
    expect(lines.find((l) => l.startsWith('STRATA_ALERT_HEAP_USED_RATIO:'))).toMatch(/from 0 to 1/)
  })

  it('reads the analytics max range as a duration', () => {
    expect(loadConfig({ STRATA_ANALYTICS_MAX_RANGE: '90d' }).analyticsMaxRangeMs).toBe(
      90 * 86_400_000,
    )
    expect(loadConfig({}).analyticsMaxRangeMs).toBeUndefined()
    for (const bad of ['forever', '0', '-3d'])
      expect(linesOf({ STRATA_ANALYTICS_MAX_RANGE: bad })[0]).toMatch(
        /^STRATA_ANALYTICS_MAX_RANGE: must be a positive duration/,
      )
  })

  it('treats empty strings as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' }).port).toBe(3000)
  })
})

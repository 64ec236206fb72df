import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cliEntry, repoRoot, tsNodeArgs } from '../../../test/support/spawn.js'
import { databaseOptions, loadConfig } from '../src/config.js'
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

  it('reads the database pool variables and hands them to @strata/pg as options', () => {
    const c = loadConfig({
      DATABASE_POOL_MAX: '20',
      DATABASE_POOL_MIN: '2',
      DATABASE_IDLE_TIMEOUT: '10s',
      DATABASE_ACQUIRE_TIMEOUT: '250ms',
      DATABASE_STATEMENT_TIMEOUT: '0',
      DATABASE_IDLE_IN_TRANSACTION_TIMEOUT: '2m',
      DATABASE_QUERY_TIMEOUT: '45000',
      DATABASE_LEAK_THRESHOLD: '1m',
      DATABASE_LEAK_STACKS: 'true',
      PGAPPNAME: 'strata-eu',
      SLOW_QUERY_THRESHOLD_MS: '250',
    })
    expect(c.databasePool).toEqual({
      max: 20,
      min: 2,
      idleTimeoutMs: 10_000,
      acquireTimeoutMs: 250,
      statementTimeoutMs: 0,
      idleInTransactionTimeoutMs: 120_000,
      queryTimeoutMs: 45_000,
    })
    expect(databaseOptions(c)).toEqual({
      applicationName: 'strata-eu',
      pool: c.databasePool,
      monitor: { slowQueryMs: 250 },
      health: { leakThresholdMs: 60_000, leakStacks: true },
    })
  })

  it('leaves unset pool variables to the defaults of @strata/pg', () => {
    const c = loadConfig({})
    expect(c.databasePool).toEqual({})
    expect(databaseOptions(c)).toEqual({ pool: {}, monitor: { slowQueryMs: 100 }, health: {} })
  })

  it('names every bad variable in one error, the pool variables included', () => {
    const lines = linesOf({ PORT: 'abc', DATABASE_POOL_MAX: 'lots' })
    expect(lines).toHaveLength(2)
    expect(lines).toContainEqual('PORT: must be a whole number (got "abc")')
    expect(lines).toContainEqual('DATABASE_POOL_MAX: must be a whole number (got "lots")')
    expect(
      linesOf({
        DATABASE_POOL_MIN: '-1',
        DATABASE_STATEMENT_TIMEOUT: '5 minutes',
        DATABASE_LEAK_STACKS: 'maybe',
      }).map((l) => l.split(':')[0]),
    ).toEqual(['DATABASE_POOL_MIN', 'DATABASE_STATEMENT_TIMEOUT', 'DATABASE_LEAK_STACKS'])
  })

  it('refuses a pool minimum above the maximum, with the other bad variables', () => {
    expect(linesOf({ DATABASE_POOL_MIN: '12' })).toEqual([
      'DATABASE_POOL_MIN: must be ≤ the default pool size (10) (got "12")',
    ])
    const lines = linesOf({ PORT: 'abc', DATABASE_POOL_MIN: '5', DATABASE_POOL_MAX: '4' })
    expect(lines).toContainEqual('DATABASE_POOL_MIN: must be ≤ DATABASE_POOL_MAX (4) (got "5")')
    expect(lines).toHaveLength(2)
    const c = loadConfig({ DATABASE_URL: 'postgres://h/db?pool_max=20', DATABASE_POOL_MIN: '12' })
    expect(c.databasePool).toEqual({ min: 12 })
  })

  it('strata start refuses a bad pool variable before starting the embedded PostgreSQL', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-config-'))
    try {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        STRATA_DATA_DIR: dataDir,
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_POOL_MAX: 'lots',
      }
      for (const k of ['DATABASE_URL', 'REDIS_URL', 'VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID'])
        delete env[k]
      const r = spawnSync(process.execPath, [...tsNodeArgs, cliEntry, 'start'], {
        cwd: repoRoot,
        env,
        encoding: 'utf8',
        timeout: 30_000,
      })
      expect(r.status).toBe(1)
      expect(r.stderr.trim()).toBe(
        'strata: invalid configuration: DATABASE_POOL_MAX: must be a whole number (got "lots")',
      )
      // Nothing started: the embedded PostgreSQL would have run initdb into <dataDir>/pg first.
      expect(existsSync(join(dataDir, 'pg'))).toBe(false)
      expect(await readdir(dataDir)).toEqual([])
    } finally {
      await rm(dataDir, { recursive: true, force: true })
    }
  }, 40_000)

  it('treats empty strings as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' }).port).toBe(3000)
  })
})

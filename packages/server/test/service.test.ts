import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'
import { redisUrl } from '../../../test/support/redis.js'
import { loadConfig } from '../src/config.js'
import { startService, type RunningService } from '../src/service.js'

let testDb: TestDatabase
let dataDir: string
let service: RunningService

beforeAll(async () => {
  testDb = await createTestDatabase('service')
  dataDir = await mkdtemp(join(tmpdir(), 'strata-service-'))
  const config = loadConfig({
    DATABASE_URL: testDb.url,
    REDIS_URL: redisUrl(),
    HOST: '127.0.0.1',
    PORT: '0',
    STRATA_DATA_DIR: dataDir,
    STRATA_ADMIN_TOKEN: 'test-operator-token-0123456789',
  })
  service = await startService(config, pino({ level: 'silent' }))
})

afterAll(async () => {
  await service?.stop()
  await testDb?.drop()
  await rm(dataDir, { recursive: true, force: true })
})

describe('startService with DATABASE_URL and REDIS_URL', () => {
  it('is ready when both the database and Redis answer', async () => {
    const res = await fetch(`${service.url}/readyz`)
    expect(res.status).toBe(200)
    const body = (await res.json()) as { checks: { name: string; ok: boolean }[] }
    expect(body.checks.map((c) => [c.name, c.ok])).toEqual([
      ['database', true],
      ['redis', true],
    ])
  })

  it('applies the migrations on start', async () => {
    const { rows } = await service.db.query<{ n: string }>(
      'SELECT count(*) AS n FROM strata_migrations',
    )
    expect(Number(rows[0]!.n)).toBeGreaterThan(0)
  })

  it('exposes database, cache and HTTP metrics at /metrics', async () => {
    await service.cache.getOrSet('service-test:key', async () => 42)
    const text = await (await fetch(`${service.url}/metrics`)).text()
    expect(text).toMatch(/^db_client_operation_duration_seconds_bucket/m)
    expect(text).toMatch(/^strata_cache_requests_total\{/m)
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m)
    await service.cache.delete('service-test:key')
  })

  it('stops idempotently and refuses connections afterwards', async () => {
    const url = service.url
    await Promise.all([service.stop(), service.stop()])
    await expect(fetch(`${url}/healthz`)).rejects.toThrow()
  })
})

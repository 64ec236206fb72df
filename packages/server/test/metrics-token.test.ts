import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { serverErrors } from '../src/errors.js'
import { testApp, type TestApp } from './support/test-app.js'

const METRICS_TOKEN = 'metrics-scrape-token-0123456789'

describe('/metrics behind STRATA_METRICS_TOKEN', () => {
  let fx: TestApp
  let base: string

  beforeAll(async () => {
    fx = await testApp('metrics_token', {
      config: { metricsToken: METRICS_TOKEN, adminToken: 'operator-token-0123456789' },
    })
    base = await fx.app.listen({ host: '127.0.0.1', port: 0 })
  })
  afterAll(async () => {
    await fx?.close()
  })

  const scrape = (authorization?: string) =>
    fetch(`${base}/metrics`, authorization ? { headers: { authorization } } : {})

  it('answers 401 STRATA_AUTH_MISSING without credentials, with a Bearer challenge', async () => {
    const res = await scrape()
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="metrics"')
    const body = await res.text()
    expect(JSON.parse(body).error.code).toBe('STRATA_AUTH_MISSING')
    expect(body).not.toMatch(/db_client|process_cpu/)
  })

  it.each([
    ['a wrong token', 'Bearer wrong-token-0123456789'],
    ['the operator token', 'Bearer operator-token-0123456789'],
    [
      'the token with another scheme',
      `Basic ${Buffer.from(`${METRICS_TOKEN}:`).toString('base64')}`,
    ],
    ['the token without a scheme', METRICS_TOKEN],
    ['a prefix of the token', `Bearer ${METRICS_TOKEN.slice(0, -1)}`],
  ])('answers 401 STRATA_AUTH_INVALID for %s', async (_name, authorization) => {
    const res = await scrape(authorization)
    expect(res.status).toBe(401)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'STRATA_AUTH_INVALID',
    )
  })

  it('serves the Prometheus text with the token', async () => {
    const res = await scrape(`Bearer ${METRICS_TOKEN}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(await res.text()).toMatch(/^db_client_connection_count\{/m)
  })

  it('/healthz and /readyz stay open', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
    expect((await fetch(`${base}/readyz`)).status).toBe(200)
  })
})

describe('STRATA_METRICS_TOKEN configuration', () => {
  it('is optional, and shorter than 16 characters is a configuration error', () => {
    expect(loadConfig({}).metricsToken).toBeUndefined()
    expect(loadConfig({ STRATA_METRICS_TOKEN: METRICS_TOKEN }).metricsToken).toBe(METRICS_TOKEN)
    let err: unknown
    try {
      loadConfig({ STRATA_METRICS_TOKEN: 'short' })
    } catch (e) {
      err = e
    }
    expect(serverErrors.is(err, 'STRATA_CONFIG_INVALID')).toBe(true)
    expect((err as Error).message).toContain('STRATA_METRICS_TOKEN: must be at least 16 characters')
  })
})

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import errorsPlugin from '../src/plugins/errors.js'
import dashboardRoutes, { defaultDashboardDir } from '../src/routes/dashboard.js'
import { testApp, type TestApp } from './support/test-app.js'

const INDEX =
  '<!doctype html><html><head><script type="module" src="/dashboard/assets/index-Ab12Cd.js"></script></head><body><div id="root"></div></body></html>'
const SCRIPT = 'console.log("dashboard")'
let work: string
let dist: string
let app: FastifyInstance

async function appFor(dir: string): Promise<FastifyInstance> {
  const a = Fastify({ logger: false })
  await a.register(errorsPlugin)
  await a.register(dashboardRoutes, { dir })
  await a.ready()
  return a
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'strata-dash-'))
  dist = join(work, 'dist')
  mkdirSync(join(dist, 'assets'), { recursive: true })
  writeFileSync(join(dist, 'index.html'), INDEX)
  writeFileSync(join(dist, 'assets', 'index-Ab12Cd.js'), SCRIPT)
  // Precompressed variants, as scripts/compress.mjs writes them (index.html: gzip only).
  writeFileSync(join(dist, 'index.html.gz'), gzipSync(INDEX))
  writeFileSync(join(dist, 'assets', 'index-Ab12Cd.js.br'), brotliCompressSync(SCRIPT))
  writeFileSync(join(dist, 'assets', 'index-Ab12Cd.js.gz'), gzipSync(SCRIPT))
  writeFileSync(join(dist, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>')
  writeFileSync(join(dist, '.env'), 'SECRET=1')
  writeFileSync(join(work, 'secret.txt'), 'outside the dist folder')
  app = await appFor(dist)
})
afterAll(async () => {
  await app?.close()
  rmSync(work, { recursive: true, force: true })
})

const get = (url: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'GET', url, headers })

describe('GET /dashboard', () => {
  it('redirects /dashboard to /dashboard/, keeping the query', async () => {
    const res = await get('/dashboard?project=p1&tz=UTC')
    expect(res.statusCode).toBe(302)
    expect(res.headers.location).toBe('/dashboard/?project=p1&tz=UTC')
  })

  it('serves index.html at /dashboard/ with no-cache and security headers', async () => {
    const res = await get('/dashboard/')
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/html/)
    expect(res.headers['cache-control']).toBe('no-cache')
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    expect(res.headers['content-security-policy']).toContain("script-src 'self'")
    expect(res.body).toBe(INDEX)
  })

  it('serves hashed assets as immutable for a year', async () => {
    const res = await get('/dashboard/assets/index-Ab12Cd.js')
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/javascript/)
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    expect(res.body).toBe(SCRIPT)
    // Revalidation works for the no-cache files.
    const index = await get('/dashboard/')
    const again = await get('/dashboard/', { 'if-none-match': String(index.headers.etag) })
    expect(again.statusCode).toBe(304)
  })

  it('sends the precompressed file a browser accepts, with the same headers', async () => {
    const js = await get('/dashboard/assets/index-Ab12Cd.js', {
      'accept-encoding': 'gzip, deflate, br',
    })
    expect(js.statusCode).toBe(200)
    expect(js.headers['content-encoding']).toBe('br')
    expect(js.headers['content-type']).toMatch(/javascript/)
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    expect(js.headers.vary).toMatch(/accept-encoding/i)
    expect(brotliDecompressSync(js.rawPayload).toString()).toBe(SCRIPT)

    const gz = await get('/dashboard/assets/index-Ab12Cd.js', { 'accept-encoding': 'gzip' })
    expect(gz.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(gz.rawPayload).toString()).toBe(SCRIPT)

    // index.html has no .br: gzip, for the root and for client-side routes alike.
    for (const url of ['/dashboard/', '/dashboard/sessions']) {
      const html = await get(url, { 'accept-encoding': 'br, gzip' })
      expect(html.statusCode, url).toBe(200)
      expect(html.headers['content-encoding'], url).toBe('gzip')
      expect(html.headers['content-type'], url).toMatch(/^text\/html/)
      expect(html.headers['cache-control'], url).toBe('no-cache')
      expect(html.headers['content-security-policy'], url).toContain("script-src 'self'")
      expect(gunzipSync(html.rawPayload).toString(), url).toBe(INDEX)
    }

    const plain = await get('/dashboard/assets/index-Ab12Cd.js')
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(plain.body).toBe(SCRIPT)
  })

  it('serves other top-level files with no-cache', async () => {
    const res = await get('/dashboard/favicon.svg')
    expect(res.statusCode).toBe(200)
    expect(res.headers['cache-control']).toBe('no-cache')
  })

  it('answers client-side routes (deep links) with index.html', async () => {
    for (const url of [
      '/dashboard/logins',
      '/dashboard/logins?from=2026-01-01&to=2026-01-31&tz=Europe%2FParis',
      '/dashboard/users/user_42',
      '/dashboard/performance/',
    ]) {
      const res = await get(url)
      expect(res.statusCode, url).toBe(200)
      expect(res.headers['content-type'], url).toMatch(/^text\/html/)
      expect(res.headers['cache-control'], url).toBe('no-cache')
      expect(res.body, url).toBe(INDEX)
    }
  })

  it('answers a missing file with a 404 in the error format, not index.html', async () => {
    const res = await get('/dashboard/assets/index-Gone99.js')
    expect(res.statusCode).toBe(404)
    expect(res.json().error.code).toBe('STRATA_NOT_FOUND')
  })

  it('never serves files outside the folder, nor dotfiles', async () => {
    for (const url of [
      '/dashboard/../secret.txt',
      '/dashboard/%2e%2e/secret.txt',
      '/dashboard/assets/..%2f..%2fsecret.txt',
      '/dashboard/%2e%2e%2fsecret.txt',
      '/dashboard/..%5csecret.txt',
      '/dashboard/.env',
    ]) {
      const res = await get(url)
      expect(res.body, url).not.toContain('outside the dist folder')
      expect(res.body, url).not.toContain('SECRET')
      expect(res.statusCode, url).toBeGreaterThanOrEqual(400)
      expect(res.statusCode, url).toBeLessThan(500)
      expect(res.json().error.code, url).toMatch(/^STRATA_(NOT_FOUND|BAD_REQUEST)$/)
    }
  })

  it('answers 503 STRATA_DASHBOARD_NOT_BUILT until the folder holds a build', async () => {
    const later = join(work, 'later')
    const empty = await appFor(later)
    try {
      for (const url of ['/dashboard/', '/dashboard/logins', '/dashboard/assets/x.js']) {
        const res = await empty.inject({ method: 'GET', url })
        expect(res.statusCode, url).toBe(503)
        const error = res.json().error
        expect(error.code).toBe('STRATA_DASHBOARD_NOT_BUILT')
        expect(error.message).toContain('npm run build')
      }
      expect((await empty.inject({ method: 'GET', url: '/dashboard' })).statusCode).toBe(302)
      // A build made while the service runs is served at once.
      mkdirSync(later)
      writeFileSync(join(later, 'index.html'), INDEX)
      const res = await empty.inject({ method: 'GET', url: '/dashboard/logins' })
      expect(res.statusCode).toBe(200)
      expect(res.body).toBe(INDEX)
    } finally {
      await empty.close()
    }
  })
})

describe('configuration', () => {
  it('reads STRATA_DASHBOARD_DIR; the default is packages/dashboard/dist', () => {
    expect(loadConfig({ STRATA_DASHBOARD_DIR: '/srv/dash' }).dashboardDir).toBe('/srv/dash')
    expect(loadConfig({}).dashboardDir).toBeUndefined()
    expect(defaultDashboardDir()).toMatch(/packages\/dashboard\/dist\/?$/)
  })

  describe('buildApp', () => {
    let fx: TestApp
    let full: FastifyInstance
    beforeAll(async () => {
      fx = await testApp('dash', { config: { dashboardDir: dist } })
      full = fx.app
    })
    afterAll(async () => {
      await fx?.close()
    })

    it('serves the configured folder at /dashboard/ without credentials', async () => {
      const res = await full.inject({ method: 'GET', url: '/dashboard/sessions' })
      expect(res.statusCode).toBe(200)
      expect(res.body).toBe(INDEX)
    })
  })
})

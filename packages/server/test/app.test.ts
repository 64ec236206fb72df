import type { Database } from '@strata/pg'
import type { FastifyInstance } from 'fastify'
import { connect } from 'node:net'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { buildApp } from '../src/app.js'
import { defaultConfig } from '../src/config.js'
import { testApp, type TestApp } from './support/test-app.js'

let fx: TestApp
let db: Database
let app: FastifyInstance

beforeAll(async () => {
  fx = await testApp('server', {
    extend: (a) => a.post('/echo', async (request) => request.body),
  })
  ;({ app, db } = fx)
})

afterAll(async () => {
  await fx?.close()
})

describe('operations routes', () => {
  it('GET /healthz answers 200', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ status: 'ok' })
  })

  it('GET /readyz checks the database', async () => {
    const res = await app.inject({ method: 'GET', url: '/readyz' })
    expect(res.statusCode).toBe(200)
    expect(res.json().checks).toEqual([expect.objectContaining({ name: 'database', ok: true })])
  })

  it('GET /readyz answers 503 with the failing check when a dependency is down', async () => {
    app.readiness.push({
      name: 'broken',
      check: () => Promise.reject(new Error('connection refused')),
    })
    try {
      const res = await app.inject({ method: 'GET', url: '/readyz' })
      expect(res.statusCode).toBe(503)
      expect(res.headers['retry-after']).toBe('1')
      expect(res.json().error.code).toBe('STRATA_NOT_READY')
      expect(res.json().error.details.checks).toContainEqual(
        expect.objectContaining({ name: 'broken', ok: false, error: 'failed' }),
      )
      // What the dependency said stays in the log.
      expect(res.body).not.toContain('connection refused')
    } finally {
      app.readiness.pop()
    }
  })

  it('GET /metrics exposes process, HTTP and database metrics in Prometheus text', async () => {
    await db.query('SELECT 1', [], { label: 'metrics-test' })
    await app.inject({ method: 'GET', url: '/healthz' })
    const res = await app.inject({ method: 'GET', url: '/metrics' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain/)
    expect(res.body).toMatch(/^process_cpu_user_seconds_total /m)
    expect(res.body).toMatch(
      /^http_server_request_duration_seconds_count\{.*http_route="\/healthz".*\} \d+/m,
    )
    expect(res.body).toMatch(
      /^db_client_operation_duration_seconds_count\{.*label="metrics-test".*\} 1/m,
    )
    expect(res.body).toMatch(/^db_client_connection_count\{.*state="idle".*\}/m)
  })
})

describe('error format', () => {
  it('unknown routes get STRATA_NOT_FOUND', async () => {
    const res = await app.inject({ method: 'GET', url: '/nope?token=secret' })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toEqual({
      error: { code: 'STRATA_NOT_FOUND', message: 'No route GET /nope' },
    })
  })

  it('malformed JSON is a 400 with a code, never a stack', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"a":',
    })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.code).toBe('STRATA_MALFORMED_JSON')
    expect(res.body).not.toMatch(/at .*\.js/)
  })

  it('__proto__ keys are refused as malformed', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"__proto__":{"x":1}}',
    })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.code).toBe('STRATA_MALFORMED_JSON')
  })

  it('bodies over 500 KB get 413 STRATA_BODY_TOO_LARGE', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ a: 'x'.repeat(600_000) }),
    })
    expect(res.statusCode).toBe(413)
    expect(res.json().error.code).toBe('STRATA_BODY_TOO_LARGE')
  })

  it('unsupported media types get 415', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'application/xml' },
      payload: '<a/>',
    })
    expect(res.statusCode).toBe(415)
    expect(res.json().error.code).toBe('STRATA_UNSUPPORTED_MEDIA_TYPE')
  })

  it('a request arriving on an open connection while the app drains gets 503 STRATA_SHUTTING_DOWN', async () => {
    const local = await buildApp(defaultConfig(), { db, logger: pino({ level: 'silent' }) })
    let release!: () => void
    const started = new Promise<void>((ready) =>
      local.get('/slow', () => {
        ready()
        return new Promise((resolve) => (release = () => resolve({ done: true })))
      }),
    )
    const address = await local.listen({ host: '127.0.0.1', port: 0 })
    const { port } = new URL(address)
    const socket = connect(Number(port), '127.0.0.1')
    let raw = ''
    socket.on('data', (d: Buffer) => (raw += d.toString()))
    const ended = new Promise((r) => socket.on('close', r))
    socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
    await started
    const closed = local.close()
    // Draining has begun once the listening socket is closed (after the preClose hooks).
    await vi.waitFor(() => expect(local.server.listening).toBe(false), { timeout: 10_000 })
    // Pipelined on the busy connection: served after /slow, while the app is closing.
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    release()
    await closed
    await ended
    const responses = raw.split(/(?=HTTP\/1\.1 )/)
    expect(responses[0]).toMatch(/^HTTP\/1\.1 200/)
    expect(responses[0]).toContain('{"done":true}')
    expect(responses[1]).toMatch(/^HTTP\/1\.1 503/)
    expect(responses[1]).toMatch(/retry-after: 1/i)
    expect(responses[1]).toContain('"code":"STRATA_SHUTTING_DOWN"')
  })

  it('unexpected errors are 500 STRATA_INTERNAL without internals', async () => {
    const local = await buildApp(defaultConfig(), { db, logger: pino({ level: 'silent' }) })
    local.get('/boom', async () => {
      throw new Error('secret internal detail')
    })
    const res = await local.inject({ method: 'GET', url: '/boom' })
    await local.close()
    expect(res.statusCode).toBe(500)
    expect(res.json()).toEqual({ error: { code: 'STRATA_INTERNAL', message: 'Internal error' } })
  })
})

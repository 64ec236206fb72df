// Errors tell callers a code and a message written for them; what the driver said (server
// addresses, Postgres detail/where/table/constraint/schema/hint, stacks) goes to the log with
// the request id. Over real HTTP, with a really unreachable database and a real constraint
// violation.
import { Writable } from 'node:stream'
import { createServer } from 'node:net'
import { eventsMigrations } from '@strata/events'
import { createDatabase, type Database } from '@strata/pg'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../src/app.js'
import { defaultConfig } from '../src/config.js'
import { serverErrors } from '../src/errors.js'
import { createLogger } from '../src/logger.js'
import { testApp, type TestApp } from './support/test-app.js'

const ADMIN_TOKEN = 'exposure-operator-token-0123456789'
// Well-formed project keys (sk_a_/sk_w_ + 43 base64url chars): they reach the key lookup.
const ADMIN_KEY = `sk_a_${'A'.repeat(43)}`
const WRITE_KEY = `sk_w_${'B'.repeat(43)}`

/** A logger that keeps every line, parsed, at debug level. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l))
      cb()
    },
  })
  return { logger: createLogger({ logLevel: 'debug' }, stream), lines }
}

/** A port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const { port } = srv.address() as { port: number }
  await new Promise((r) => srv.close(r))
  return port
}

/** What no answer may contain: addresses, socket error names, stacks, Postgres fields. */
function expectNothingInternal(body: string, port?: number): void {
  expect(body).not.toMatch(/\b\d{1,3}(\.\d{1,3}){3}\b/)
  if (port) expect(body).not.toContain(String(port))
  expect(body).not.toMatch(/ECONNREFUSED|connect E|\bat .*:\d+:\d+|"stack"|node:internal/)
  expect(body).not.toMatch(/"(detail|where|table|constraint|schema|hint|routine|severity)"/)
}

/** The log lines of one request (Fastify's child logger binds reqId). */
const linesOf = (lines: Record<string, unknown>[], reqId: string | null) => {
  expect(reqId, 'x-request-id header').toBeTruthy()
  return lines.filter((l) => l.reqId === reqId)
}

describe('a database that cannot be reached', () => {
  let app: FastifyInstance
  let db: Database
  let base: string
  let port: number
  const log = capturingLogger()

  beforeAll(async () => {
    port = await closedPort()
    db = await createDatabase({
      url: `postgres://postgres@127.0.0.1:${port}/strata`,
      connect: false,
      pool: { acquireTimeoutMs: 1000 },
    })
    app = await buildApp(defaultConfig({ adminToken: ADMIN_TOKEN }), {
      db,
      logger: log.logger,
      overrides: { performance: { evaluateEveryMs: 0, sampleStatements: false } },
    })
    base = await app.listen({ host: '127.0.0.1', port: 0 })
  })

  afterAll(async () => {
    await app?.close()
    await db?.close()
  })

  it('/readyz (no credentials) names the failing check and a code, nothing the driver said', async () => {
    const res = await fetch(`${base}/readyz`)
    const body = await res.text()
    expect(res.status).toBe(503)
    const json = JSON.parse(body) as {
      error: { code: string; details: { checks: Record<string, unknown>[] } }
    }
    expect(json.error.code).toBe('STRATA_NOT_READY')
    expect(json.error.details.checks).toEqual([
      { name: 'database', ok: false, ms: expect.any(Number), error: 'STRATA_DB_UNAVAILABLE' },
    ])
    expectNothingInternal(body, port)
    // The log has the driver's words and the address, under the request id.
    const mine = linesOf(log.lines, res.headers.get('x-request-id'))
    const logged = JSON.stringify(mine)
    expect(logged).toContain('ECONNREFUSED')
    expect(logged).toContain(`127.0.0.1:${port}`)
  })

  it.each([
    [
      'an admin key (analytics)',
      'GET',
      '/v1/analytics/logins',
      { authorization: `Bearer ${ADMIN_KEY}` },
      undefined,
    ],
    [
      'a write key (ingestion)',
      'POST',
      '/v1/logins',
      { authorization: `Bearer ${WRITE_KEY}`, 'content-type': 'application/json' },
      '{"userId":"u","success":true}',
    ],
    [
      'a Segment body writeKey',
      'POST',
      '/v1/track',
      { 'content-type': 'application/json' },
      `{"writeKey":"${WRITE_KEY}","event":"e","userId":"u"}`,
    ],
  ])(
    'the key lookup with %s answers 503 STRATA_DB_UNAVAILABLE with no address',
    async (_n, method, path, headers, payload) => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers,
        ...(payload ? { body: payload } : {}),
      })
      const body = await res.text()
      expect(res.status, body).toBe(503)
      expect(JSON.parse(body)).toEqual({
        error: { code: 'STRATA_DB_UNAVAILABLE', message: 'Database is unavailable' },
      })
      expect(res.headers.get('retry-after')).toBe('1')
      expectNothingInternal(body, port)
      const mine = linesOf(log.lines, res.headers.get('x-request-id'))
      const failed = mine.find((l) => l.msg === 'request failed')
      expect(failed, JSON.stringify(mine)).toBeDefined()
      expect(JSON.stringify(failed)).toContain(`ECONNREFUSED 127.0.0.1:${port}`)
      expect((failed!.err as { stack?: string }).stack).toMatch(/\n\s+at /)
    },
  )
})

describe('a constraint violation reaching an operator route', () => {
  let fx: TestApp
  let base: string
  const log = capturingLogger()

  beforeAll(async () => {
    fx = await testApp('exposure', {
      migrations: [eventsMigrations],
      config: { adminToken: ADMIN_TOKEN },
      // Real server-side refusals: a unique constraint, and a trigger raising with
      // DETAIL/HINT (its error carries `where`, the PL/pgSQL context).
      prepare: async (db) => {
        await db.query('ALTER TABLE projects ADD CONSTRAINT projects_secret_name_key UNIQUE (name)')
        await db.query(`
          CREATE FUNCTION refuse_project() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            IF NEW.name = 'forbidden' THEN
              RAISE EXCEPTION 'internal rule refused % at 10.1.2.3:5432', NEW.name
                USING DETAIL = 'secret detail text', HINT = 'secret hint text', ERRCODE = 'P0001';
            END IF;
            RETURN NEW;
          END $$`)
        await db.query(
          'CREATE TRIGGER refuse_project BEFORE INSERT ON projects FOR EACH ROW EXECUTE FUNCTION refuse_project()',
        )
      },
      build: async (db, config) => {
        const app = await buildApp(config, { db, logger: log.logger })
        // A refusal (4xx) a route builds around a real driver error, quoting it.
        app.post('/test/refusal', async () => {
          try {
            await db.query(`INSERT INTO projects (name) VALUES ('refused'), ('refused')`)
          } catch (err) {
            throw serverErrors.create('STRATA_BAD_REQUEST', {
              message: `cannot store: ${(err as { cause?: Error }).cause?.message}`,
              details: { field: 'name', ...(err as { details?: object }).details },
              cause: err,
            })
          }
          return {}
        })
        return app
      },
    })
    base = await fx.app.listen({ host: '127.0.0.1', port: 0 })
  })

  afterAll(async () => {
    await fx?.close()
  })

  const create = (name: string) =>
    fetch(`${base}/v1/projects`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name }),
    })

  it('a unique violation: the code and a safe message; detail, table and constraint in the log', async () => {
    expect((await create('dup')).status).toBe(201)
    const res = await create('dup')
    const body = await res.text()
    expect(res.status).toBe(500)
    expect(JSON.parse(body)).toEqual({
      error: { code: 'STRATA_DB_QUERY_FAILED', message: 'Database query failed' },
    })
    expectNothingInternal(body)
    expect(body).not.toMatch(/projects_secret_name_key|Key \(name\)|duplicate key|projects/)
    const failed = linesOf(log.lines, res.headers.get('x-request-id')).find(
      (l) => l.msg === 'request failed',
    )
    const err = failed?.err as { details?: Record<string, unknown> } | undefined
    expect(err?.details).toMatchObject({
      code: '23505',
      constraint: 'projects_secret_name_key',
      table: 'projects',
      schema: 'public',
      detail: 'Key (name)=(dup) already exists.',
    })
  })

  it('a refusal (4xx) quoting a driver error: the documented message; its own details only', async () => {
    const res = await fetch(`${base}/test/refusal`, { method: 'POST' })
    const body = await res.text()
    expect(res.status).toBe(400)
    expect(JSON.parse(body)).toEqual({
      error: {
        code: 'STRATA_BAD_REQUEST',
        message: 'Bad request',
        details: { field: 'name', code: '23505' },
      },
    })
    expectNothingInternal(body)
    const rejected = linesOf(log.lines, res.headers.get('x-request-id')).find(
      (l) => l.msg === 'request rejected',
    )
    expect(JSON.stringify(rejected)).toContain('projects_secret_name_key')
  })

  it('an operator’s own SQL mistake keeps its message, reason and position', async () => {
    const res = await fetch(`${base}/v1/performance/query-plan`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sql: 'SELEC 1' }),
    })
    expect(res.status).toBe(400)
    expect(await res.json()).toEqual({
      error: {
        code: 'STRATA_DB_EXPLAIN_REJECTED',
        message: expect.stringContaining('syntax error at or near "SELEC"'),
        details: { reason: 'syntax_error', position: 1 },
      },
    })
  })

  it('a trigger refusal: no detail, hint, where or quoted address reaches the caller', async () => {
    const res = await create('forbidden')
    const body = await res.text()
    expect(res.status).toBe(500)
    expect(JSON.parse(body).error.code).toBe('STRATA_DB_QUERY_FAILED')
    expectNothingInternal(body)
    expect(body).not.toMatch(/secret|refuse_project|PL\/pgSQL|internal rule/)
    const failed = linesOf(log.lines, res.headers.get('x-request-id')).find(
      (l) => l.msg === 'request failed',
    )
    expect((failed?.err as { details?: unknown }).details).toMatchObject({
      detail: 'secret detail text',
      hint: 'secret hint text',
      where: expect.stringContaining('refuse_project'),
    })
  })
})

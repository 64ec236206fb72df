// Every refusal answers in the one error envelope, including those Node or Fastify make before
// a route runs: checked over raw sockets, byte for byte, against a listening app.
import type { FastifyInstance } from 'fastify'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testApp, type TestApp } from './support/test-app.js'

let fx: TestApp
let app: FastifyInstance
let port: number

beforeAll(async () => {
  fx = await testApp('envelope', {
    config: { adminToken: 'operator-token-0123456789' },
    extend: (a) => {
      a.post('/echo', async (request) => request.body)
      a.get('/items/:id', async (request) => request.params)
    },
  })
  app = fx.app
  port = Number(new URL(await app.listen({ host: '127.0.0.1', port: 0 })).port)
})

afterAll(async () => {
  await fx?.close()
})

interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
  raw: string
}

/** Parses the first HTTP/1.1 response in `raw` (Content-Length framed). */
function parse(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n')
  expect(end, `no complete head in ${JSON.stringify(raw.slice(0, 200))}`).toBeGreaterThan(0)
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const l of lines) {
    const i = l.indexOf(':')
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
  }
  const length = Number(headers['content-length'])
  const body = raw.slice(end + 4, end + 4 + length)
  return { status: Number(statusLine!.split(' ')[1]), headers, body, raw }
}

/** Sends `chunks` on a fresh connection and collects what comes back until the server closes it. */
function exchange(
  chunks: (string | Buffer)[],
  options: { untilBytes?: boolean; onSocket?: (s: Socket) => void } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let raw = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer; got ${JSON.stringify(raw.slice(0, 300))}`))
    }, 10_000)
    const done = () => {
      clearTimeout(timer)
      socket.destroy()
      try {
        resolve(parse(raw))
      } catch (err) {
        reject(err as Error)
      }
    }
    socket.on('data', (d: Buffer) => {
      raw += d.toString('latin1')
      // Keep-alive answers leave the socket open: stop once one whole response is in.
      const end = raw.indexOf('\r\n\r\n')
      const m = /\r\ncontent-length: *(\d+)/i.exec(raw.slice(0, end))
      if (end > 0 && m && raw.length >= end + 4 + Number(m[1])) done()
    })
    // A reset after the answer is fine: the server refuses the rest of what we send.
    socket.on('error', () => (raw ? done() : undefined))
    socket.on('close', () => (raw ? done() : undefined))
    socket.on('connect', () => {
      options.onSocket?.(socket)
      for (const c of chunks) socket.write(c)
    })
  })
}

/** The envelope every refusal must have: code, message, JSON type and an exact length. */
function expectEnvelope(res: RawResponse, status: number, code: string): void {
  expect(res.status, res.raw.slice(0, 300)).toBe(status)
  expect(res.headers['content-type']).toMatch(/^application\/json/)
  expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.body))
  const json = JSON.parse(res.body) as { error: { code: string; message: string } }
  expect(json.error.code).toBe(code)
  expect(typeof json.error.message).toBe('string')
  expect(json.error.message.length).toBeGreaterThan(0)
  expect(Object.keys(json)).toEqual(['error'])
  expect(res.body).not.toMatch(/statusCode|FST_ERR|"error":"/)
}

describe('refusals Node makes before Fastify sees a request', () => {
  it('headers over the limit: 431 STRATA_HEADERS_TOO_LARGE, connection closed', async () => {
    const res = await exchange([
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`,
    ])
    expectEnvelope(res, 431, 'STRATA_HEADERS_TOO_LARGE')
    expect(res.headers.connection).toBe('close')
  })

  it('many headers adding up over the limit: 431 as well', async () => {
    const many = Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'v'.repeat(60)}\r\n`).join('')
    const res = await exchange([`GET /healthz HTTP/1.1\r\nHost: x\r\n${many}\r\n`])
    expectEnvelope(res, 431, 'STRATA_HEADERS_TOO_LARGE')
  })

  it.each([
    ['a garbage request line', 'GARBAGE\r\n\r\n'],
    ['an invalid method', 'G@T / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['an unknown HTTP version', 'GET / HTTP/9.9\r\nHost: x\r\n\r\n'],
    ['a header without a colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n'],
    ['a control character in the URL', 'GET /he\x01lthz HTTP/1.1\r\nHost: x\r\n\r\n'],
    [
      'both Content-Length and chunked',
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    [
      'a bad chunk size',
      'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    ],
  ])('%s: 400 STRATA_BAD_REQUEST, connection closed', async (_name, request) => {
    const res = await exchange([request])
    expectEnvelope(res, 400, 'STRATA_BAD_REQUEST')
    expect(res.headers.connection).toBe('close')
  })

  it('an Expect header other than 100-continue: 417 STRATA_EXPECTATION_FAILED', async () => {
    const res = await exchange(['GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n'])
    expectEnvelope(res, 417, 'STRATA_EXPECTATION_FAILED')
    expect(res.headers.connection).toBe('close')
  })

  it('CONNECT: 405 STRATA_METHOD_NOT_ALLOWED, not a silently closed socket', async () => {
    const res = await exchange([
      'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
    ])
    expectEnvelope(res, 405, 'STRATA_METHOD_NOT_ALLOWED')
  })

  it('a request that times out: 408 STRATA_REQUEST_TIMEOUT on the same socket', async () => {
    // Node reports request and header timeouts through 'clientError' with this code; its
    // connection checker runs every 30 s, so the event is raised here on the server's socket.
    const server = app.server
    const serverSide = new Promise<Socket>((r) => server.once('connection', r))
    const answer = exchange(['GET /healthz HTTP/1.1\r\nHost: x\r\n'])
    const socket = await serverSide
    // The partial request has reached the server, as when Node's timeout fires.
    await new Promise((r) => socket.once('data', r))
    server.emit(
      'clientError',
      Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }),
      socket,
    )
    const res = await answer
    expectEnvelope(res, 408, 'STRATA_REQUEST_TIMEOUT')
    expect(res.headers.connection).toBe('close')
  })
})

describe('refusals Fastify makes', () => {
  it('a body over the limit (Content-Length): 413 STRATA_BODY_TOO_LARGE, connection closed', async () => {
    const res = await exchange([
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 600000\r\n\r\n',
      `{"a":"${'x'.repeat(10_000)}`,
    ])
    expectEnvelope(res, 413, 'STRATA_BODY_TOO_LARGE')
    expect(res.headers.connection).toBe('close')
  })

  it('a chunked body growing over the limit: 413 STRATA_BODY_TOO_LARGE', async () => {
    const chunk = 'x'.repeat(64 * 1024)
    const chunks = [
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      ...Array.from({ length: 10 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`),
    ]
    const res = await exchange(chunks)
    expectEnvelope(res, 413, 'STRATA_BODY_TOO_LARGE')
  })

  it('an operator route with an over-limit body: 413', async () => {
    const res = await exchange([
      'POST /v1/performance/query-plan HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer operator-token-0123456789\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{',
    ])
    expectEnvelope(res, 413, 'STRATA_BODY_TOO_LARGE')
  })

  it('a path parameter over the length limit: 414 STRATA_URI_TOO_LONG', async () => {
    const res = await exchange([`GET /items/${'a'.repeat(500)} HTTP/1.1\r\nHost: x\r\n\r\n`])
    expectEnvelope(res, 414, 'STRATA_URI_TOO_LONG')
  })

  it('a URL that does not decode: 400 STRATA_BAD_REQUEST', async () => {
    const res = await exchange(['GET /items/%E0%A4%A HTTP/1.1\r\nHost: x\r\n\r\n'])
    expectEnvelope(res, 400, 'STRATA_BAD_REQUEST')
  })

  it('an unsupported content type: 415 STRATA_UNSUPPORTED_MEDIA_TYPE', async () => {
    const res = await exchange([
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nContent-Length: 4\r\n\r\n<a/>',
    ])
    expectEnvelope(res, 415, 'STRATA_UNSUPPORTED_MEDIA_TYPE')
  })

  it('malformed JSON: 400 STRATA_MALFORMED_JSON', async () => {
    const res = await exchange([
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{"a":',
    ])
    expectEnvelope(res, 400, 'STRATA_MALFORMED_JSON')
  })

  it('an unknown route: 404 STRATA_NOT_FOUND', async () => {
    const res = await exchange(['GET /no/such/route HTTP/1.1\r\nHost: x\r\n\r\n'])
    expectEnvelope(res, 404, 'STRATA_NOT_FOUND')
  })

  it('a known path with another method: 405 STRATA_METHOD_NOT_ALLOWED with Allow', async () => {
    for (const [method, path, allow] of [
      ['DELETE', '/healthz', 'GET, HEAD'],
      ['PUT', '/items/42', 'GET, HEAD'],
      ['GET', '/echo', 'POST'],
      ['PATCH', '/v1/imports/7b0c0a50-0000-4000-8000-000000000000/pause', 'POST'],
    ] as const) {
      const res = await exchange([`${method} ${path} HTTP/1.1\r\nHost: x\r\n\r\n`])
      expectEnvelope(res, 405, 'STRATA_METHOD_NOT_ALLOWED')
      expect(res.headers.allow, `${method} ${path}`).toBe(allow)
    }
  })

  it('ordinary answers on a kept-alive connection are unaffected', async () => {
    const res = await exchange(['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'])
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' })
  })
})

import { randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { gzipSync } from 'node:zlib'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  ingestBodyChannel,
  INGEST_BODY_DEFAULTS,
  nestsDeeperThan,
  type IngestBodyMessage,
} from '../src/plugins/ingest-body.js'
import { ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

// Real HTTP (app.listen, node:http and fetch), so what is measured is what a client sees:
// whether the body was read, how the connection ends, how fast /healthz answers meanwhile.

let f: IngestFixture
let base: string
let port: number
const bodies: IngestBodyMessage[] = []
const onBody = (m: unknown) => bodies.push(m as IngestBodyMessage)

beforeAll(async () => {
  // The failure limit has its own test file; here it must not turn 401s into 429s.
  f = await ingestFixture('authbody', { rateLimit: false }, undefined, {
    trustProxy: true,
    authFailureLimit: { max: 0, windowMs: 60_000 },
  })
  await f.app.listen({ port: 0, host: '127.0.0.1' })
  port = (f.app.server.address() as AddressInfo).port
  base = `http://127.0.0.1:${port}`
  ingestBodyChannel.subscribe(onBody)
})
afterAll(async () => {
  ingestBodyChannel.unsubscribe(onBody)
  await f?.close()
})
afterEach(() => {
  vi.restoreAllMocks()
  bodies.length = 0
})

/** Counts JSON.parse calls on large texts (in the app, only an ingestion body is that large). */
function spyOnLargeParses(): () => number {
  const original = JSON.parse.bind(JSON)
  let n = 0
  vi.spyOn(JSON, 'parse').mockImplementation(
    (text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
      // Source maps (read by the test runner to format stacks) aside.
      if (typeof text === 'string' && text.length > 10_000 && !text.startsWith('{"version":')) n++
      return original(text, reviver) as unknown
    },
  )
  return () => n
}

const madeUpKey = () => `sk_w_${randomBytes(32).toString('base64url')}`
const gz = (s: string) => gzipSync(Buffer.from(s))

/** Hostile bodies, gzipped, each at most the 500 KB decompressed limit. */
const SHAPES: Record<string, Buffer> = {
  // The review's payload: 255,000 brackets in 532 bytes.
  brackets: gz('['.repeat(127_500) + ']'.repeat(127_500)),
  deepObjects: gz('{"a":'.repeat(80_000) + '1' + '}'.repeat(80_000)),
  escapes: gz(`{"batch":[{"type":"track","event":"${'\\u00e9'.repeat(80_000)}"}]}`),
  numbers: gz(`[${Array.from({ length: 60_000 }, () => '      1').join(',')}]`),
}

const CREDENTIALS: Record<string, () => Record<string, string>> = {
  none: () => ({}),
  badKey: () => ({ authorization: `Bearer ${madeUpKey()}` }),
  goodKey: () => ({ authorization: `Bearer ${f.writeKey}` }),
}

async function post(
  path: string,
  body: Buffer | string,
  headers: Record<string, string>,
): Promise<{ status: number; code: string | undefined; connection: string | null }> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  })
  const text = await res.text()
  let code: string | undefined
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code
  } catch {
    code = undefined
  }
  return { status: res.status, code, connection: res.headers.get('connection') }
}

describe('header credentials are checked before the body is read', () => {
  it('a refused request is answered without reading, decompressing or parsing its body', async () => {
    const parses = spyOnLargeParses()
    for (const [shape, body] of Object.entries(SHAPES))
      for (const path of ['/v1/events/batch', '/v1/batch', '/v1/logins'])
        for (const headers of [{}, CREDENTIALS.badKey!(), { authorization: 'Bearer nope' }]) {
          if (path === '/v1/batch' && !headers.authorization) continue // body writeKey: below
          const res = await post(path, body, { ...headers, 'content-encoding': 'gzip' })
          expect(res.status, `${shape} ${path}`).toBe(401)
          expect(res.code).toMatch(/^STRATA_AUTH_(MISSING|INVALID)$/)
          // Answered before the body: the connection is not kept to read it.
          expect(res.connection).toBe('close')
        }
    expect(parses()).toBe(0)
    expect(bodies).toEqual([])
  })

  it('a credential of the wrong kind → 403 before the body too', async () => {
    const parses = spyOnLargeParses()
    const res = await post('/v1/events/batch', SHAPES.numbers!, {
      authorization: `Bearer ${f.adminKey}`,
      'content-encoding': 'gzip',
    })
    expect(res).toMatchObject({ status: 403, code: 'STRATA_AUTH_FORBIDDEN', connection: 'close' })
    expect(parses()).toBe(0)
  })

  it('a good key still gets its body parsed, nesting refused before JSON.parse', async () => {
    const parses = spyOnLargeParses()
    const headers = { ...CREDENTIALS.goodKey!(), 'content-encoding': 'gzip' }
    for (const shape of ['brackets', 'deepObjects']) {
      const res = await post('/v1/events/batch', SHAPES[shape]!, headers)
      expect(res, shape).toMatchObject({ status: 400, code: 'STRATA_EVENT_TOO_DEEP' })
    }
    expect(parses()).toBe(0)
    expect(bodies.map((b) => b.parsed)).toEqual([false, false])
    const ok = await post(
      '/v1/events/batch',
      JSON.stringify({ events: [{ type: 'activity', userId: 'u', action: 'a' }] }),
      CREDENTIALS.goodKey!(),
    )
    expect(ok.status).toBe(202)
  })
})

describe("Segment's body writeKey (no credential header)", () => {
  const batch = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      writeKey: f.writeKey,
      batch: [{ type: 'track', event: 'beacon', anonymousId: 'a', messageId: randomKey() }],
      ...extra,
    })
  const randomKey = () => randomBytes(8).toString('hex')

  it('is still accepted for small bodies, plain or gzipped, under text/plain (sendBeacon)', async () => {
    expect((await post('/v1/batch', batch(), { 'content-type': 'text/plain' })).status).toBe(200)
    const zipped = await post('/v1/batch', gz(batch()), { 'content-encoding': 'gzip' })
    expect(zipped.status).toBe(200)
    expect(bodies.every((b) => !b.authenticated)).toBe(true)
  })

  it(`refuses more than ${INGEST_BODY_DEFAULTS.unauthenticatedLimit} bytes as sent or decompressed (413), unparsed`, async () => {
    const parses = spyOnLargeParses()
    const pad = 'x'.repeat(INGEST_BODY_DEFAULTS.unauthenticatedLimit)
    // Declared length over the limit: refused before reading.
    const declared = await post('/v1/batch', batch({ pad }), {})
    expect(declared).toMatchObject({ status: 413, code: 'STRATA_BODY_TOO_LARGE' })
    expect(declared.connection).toBe('close')
    // Chunked, no length: refused once the limit is crossed.
    const chunked = await fetch(`${base}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new Blob([batch({ pad })]).stream(),
      duplex: 'half',
    } as RequestInit)
    expect(chunked.status).toBe(413)
    await chunked.text()
    // Small as sent, large once decompressed (the bracket bomb: 532 bytes).
    const bomb = await post('/v1/batch', SHAPES.brackets!, { 'content-encoding': 'gzip' })
    expect(bomb).toMatchObject({ status: 413, code: 'STRATA_BODY_TOO_LARGE' })
    expect(parses()).toBe(0)
    expect(bodies).toEqual([])
    // With a header the same body is fine.
    const keyed = await post('/v1/batch', batch({ pad }), CREDENTIALS.goodKey!())
    expect(keyed.status).toBe(200)
  })

  it('an unknown body writeKey → 401', async () => {
    const res = await post('/v1/batch', batch({ writeKey: madeUpKey() }), {})
    expect(res).toMatchObject({ status: 401, code: 'STRATA_AUTH_INVALID' })
  })
})

describe('a large body the server will not read', () => {
  /** node:http with a keep-alive agent: writes `size` bytes whatever the answer is. */
  function upload(
    agent: http.Agent,
    size: number,
    headers: Record<string, string>,
    chunked: boolean,
  ): Promise<{ status: number; connection: string | undefined; ms: number }> {
    const started = performance.now()
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v1/events/batch',
          agent,
          headers: {
            'content-type': 'application/json',
            ...(chunked ? {} : { 'content-length': String(size) }),
            ...headers,
          },
        },
        (res) => {
          res.resume()
          res.on('end', () =>
            resolve({
              status: res.statusCode!,
              connection: res.headers.connection,
              ms: performance.now() - started,
            }),
          )
        },
      )
      req.on('error', reject)
      const chunk = Buffer.alloc(64 * 1024, 0x20)
      let sent = 0
      const write = (): void => {
        while (sent < size) {
          sent += chunk.length
          if (!req.write(chunk)) {
            req.once('drain', write)
            return
          }
        }
        req.end()
      }
      write()
    })
  }

  it('neither hangs the client nor leaves the connection unusable (node:http and fetch)', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    try {
      for (const chunked of [false, true])
        for (const size of [600_000, 20_000_000]) {
          const refused = await upload(agent, size, CREDENTIALS.badKey!(), chunked)
          expect(refused.status).toBe(401)
          expect(refused.connection).toBe('close')
          expect(refused.ms).toBeLessThan(5000)
          // The next request on the same agent (a new connection) is answered normally.
          const next = await upload(agent, 2, CREDENTIALS.goodKey!(), false)
          expect(next.status).toBe(400) // two spaces: not JSON
        }
    } finally {
      agent.destroy()
    }
    const big = new Uint8Array(20_000_000)
    for (const body of [big, new Blob([big]).stream()]) {
      const started = performance.now()
      const res = await fetch(`${base}/v1/events/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${madeUpKey()}`, 'content-type': 'application/json' },
        body,
        ...(body instanceof Uint8Array ? {} : { duplex: 'half' }),
      } as RequestInit)
      expect(res.status).toBe(401)
      expect((await res.json()) as unknown).toMatchObject({
        error: { code: 'STRATA_AUTH_INVALID' },
      })
      expect(performance.now() - started).toBeLessThan(5000)
    }
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
  })
})

describe('the bomb no longer stalls the event loop', () => {
  it('16 clients sending hostile bodies with no key, a bad key and a good key: /healthz stays fast', async () => {
    // Warm up (JIT, the key cache), so the probe measures the flood rather than a cold start.
    for (const who of Object.keys(CREDENTIALS))
      await post('/v1/events/batch', SHAPES.numbers!, {
        ...CREDENTIALS[who]!(),
        'content-encoding': 'gzip',
      })
    bodies.length = 0
    const parses = spyOnLargeParses()
    const latencies: number[] = []
    let flooding = true
    const probe = (async () => {
      while (flooding) {
        const started = performance.now()
        const res = await fetch(`${base}/healthz`)
        await res.arrayBuffer()
        latencies.push(performance.now() - started)
        await new Promise((r) => setTimeout(r, 5))
      }
    })()
    const statuses: Record<string, Set<number>> = {}
    const clients = Array.from({ length: 16 }, async (_, c) => {
      const who = Object.keys(CREDENTIALS)[c % 3]!
      // Each client its own address (TRUST_PROXY): the good key is nobody's neighbour.
      const address = `198.51.100.${c + 1}`
      for (let round = 0; round < 3; round++)
        for (const [shape, body] of Object.entries(SHAPES)) {
          const res = await post('/v1/events/batch', body, {
            ...CREDENTIALS[who]!(),
            'content-encoding': 'gzip',
            'x-forwarded-for': address,
          })
          ;(statuses[`${who} ${shape}`] ??= new Set()).add(res.status)
        }
    })
    await Promise.all(clients)
    flooding = false
    await probe

    for (const [what, seen] of Object.entries(statuses))
      expect([...seen], what).toEqual(what.startsWith('goodKey') ? [400] : [401])
    // Work done: only the good key's bodies were read, and the nested ones were never parsed;
    // the others (escapes, numbers) cost one linear parse each.
    expect(bodies.every((b) => b.authenticated)).toBe(true)
    const goodKeyClients = 5 // clients 2, 5, 8, 11, 14
    expect(bodies).toHaveLength(goodKeyClients * 3 * Object.keys(SHAPES).length)
    expect(parses()).toBe(goodKeyClients * 3 * 2)
    const worst = Math.max(...bodies.map((b) => b.ms))
    expect(worst).toBeLessThan(50) // about 2 ms each for 480 KB on an idle core
    // Wall time, generously (shared CI cores): before, p99 was around a second.
    latencies.sort((a, b) => a - b)
    const p99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))]!
    expect(p99).toBeLessThan(300)
    if (process.env.STRATA_PRINT_FIGURES)
      console.log({ healthzP99Ms: p99, probes: latencies.length, worstBodyMs: worst })
  })
})

describe('nesting pre-scan', () => {
  it('is exact on valid JSON, skips strings and escapes, and is cheap at 500 KB', () => {
    const enc = (s: string) => Buffer.from(s)
    expect(nestsDeeperThan(enc('[[[]]]'), 3)).toBe(false)
    expect(nestsDeeperThan(enc('[[[[]]]]'), 3)).toBe(true)
    expect(nestsDeeperThan(enc('{"a":{"b":[1,{"c":2}]}}'), 4)).toBe(false)
    expect(nestsDeeperThan(enc('{"a":{"b":[1,{"c":2}]}}'), 3)).toBe(true)
    // Brackets inside strings, escaped quotes and backslashes do not count.
    expect(nestsDeeperThan(enc(`["[[[[", "\\"[[[[", "\\\\", "{{{{"]`), 1)).toBe(false)
    expect(nestsDeeperThan(enc(`["\\\\"  ,[[]]]`), 2)).toBe(true)
    // Multi-byte UTF-8 never holds an ASCII byte.
    expect(nestsDeeperThan(enc('["é😀[", ["ü"]]'), 2)).toBe(false)

    const events = Array.from({ length: 2000 }, (_, i) => ({
      type: 'track',
      event: `e${i}`,
      anonymousId: 'anon',
      properties: { path: '/a/b', tags: ['x', 'y'], n: i, s: 'quote " and \\ backslash' },
      context: { library: { name: 'analytics.js', version: '1.0.0' }, page: { url: 'https://x' } },
    }))
    const body = Buffer.from(JSON.stringify({ batch: events }))
    expect(body.length).toBeGreaterThan(400_000)
    nestsDeeperThan(body, 128) // warm-up
    const runs = 20
    const started = performance.now()
    for (let i = 0; i < runs; i++) expect(nestsDeeperThan(body, 128)).toBe(false)
    const ms = (performance.now() - started) / runs
    expect(ms).toBeLessThan(10)
    if (process.env.STRATA_PRINT_FIGURES) console.log({ scanMs: ms, bytes: body.length })
  })
})

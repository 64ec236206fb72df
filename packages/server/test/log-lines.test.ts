import { Writable } from 'node:stream'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../src/app.js'
import { testApp, type TestApp } from './support/test-app.js'

// Log pipelines parse each line as JSON: a repeated key keeps only its last value.
const lines: string[] = []
let fx: TestApp

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      done()
    },
  })
  fx = await testApp('loglines', {
    config: { adminToken: 'log-lines-operator-token-0123' },
    build: (db, config) => buildApp(config, { db, logger: pino({ level: 'info' }, sink) }),
  })
})
afterAll(async () => {
  await fx?.close()
})

describe('log lines', () => {
  it('a rejected request logs its reason once, under its own key, and one msg', async () => {
    const res = await fx.app.inject({
      method: 'GET',
      url: '/v1/performance/queries?orderBy=bogus',
      headers: { authorization: 'Bearer log-lines-operator-token-0123' },
    })
    expect(res.statusCode).toBe(400)
    const line = lines.find((l) => l.includes('request rejected'))
    expect(line, lines.join('\n')).toBeDefined()
    expect(line!.match(/"msg":/g)).toHaveLength(1)
    const parsed = JSON.parse(line!) as { msg: string; reason?: string; code: string }
    expect(parsed.msg).toBe('request rejected')
    expect(parsed.code).toBe(res.json().error.code)
    expect(parsed.reason).toBe(res.json().error.message)
  })
})

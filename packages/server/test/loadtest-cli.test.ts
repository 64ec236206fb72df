import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runLoad } from '../src/loadtest/run-load.js'
import { cliEntry, repoRoot, tsNodeArgs } from '../../../test/support/spawn.js'
import { count, ingestFixture, type IngestFixture } from './support/ingest-fixture.js'

// The CLI in a child process against the app listening on 127.0.0.1:<random port>; the child
// must not block this process, which answers its requests.
let f: IngestFixture
let base: string

beforeAll(async () => {
  f = await ingestFixture('loadtest')
  await f.app.listen({ host: '127.0.0.1', port: 0 })
  base = `http://127.0.0.1:${(f.app.server.address() as AddressInfo).port}`
})
afterAll(async () => {
  await f?.close()
})

function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' }
  for (const k of ['VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID']) delete env[k]
  const child = spawn(process.execPath, [...tsNodeArgs, cliEntry, 'loadtest', ...args], {
    cwd: repoRoot,
    env,
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  return new Promise((resolve) =>
    child.on('close', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    }),
  )
}

describe('strata loadtest', () => {
  it('200 req/s for 2 s of 2-event batches: every event stored once, the JSON summary adds up', async () => {
    const r = await cli([
      '--url',
      base,
      '--key',
      f.writeKey,
      '--rate',
      '200',
      '--duration',
      '2',
      '--batch',
      '2',
      '--json',
    ])
    expect(r.status, r.stderr).toBe(0)
    const s = JSON.parse(r.stdout)
    expect(s).toMatchObject({
      runId: expect.any(String),
      messageIdPrefix: expect.stringMatching(/^lt-/),
      target: { rate: 200, durationS: 2, mix: ['ingest'], batch: 2, concurrency: 256 },
      scheduled: 400,
      sent: 400,
      ok: 400,
      errors: 0,
      dropped: 0,
      events: { accepted: 800, duplicates: 0 },
      byKind: {
        ingest: { sent: 400, ok: 400, errors: 0 },
        analytics: { sent: 0, ok: 0, errors: 0 },
      },
      errorRate: 0,
      errorsByStatus: {},
      errorsByCode: {},
    })
    expect(s.achievedRate).toBeGreaterThan(180)
    expect(s.achievedRate).toBeLessThan(220)
    const l = s.latencyMs
    expect(Object.keys(l).sort()).toEqual(['max', 'mean', 'p50', 'p90', 'p99'])
    expect(0 < l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max).toBe(true)
    // One progress line a second on stderr; stdout is only the JSON.
    expect(r.stderr).toMatch(/sent\/s \d+ {2}ok \d+ {2}errors 0 {2}p50 [\d.]+ms {2}p99 [\d.]+ms/)
    expect(
      await count(f.db, `login_events WHERE project_id = $1 AND message_id LIKE $2`, [
        f.projectId,
        `${s.messageIdPrefix}%`,
      ]),
    ).toBe(800)
    console.log(`loadtest: achieved ${s.achievedRate}/s, p50 ${l.p50}ms, p99 ${l.p99}ms`)
  })

  it('--mix ingest,analytics takes the kinds in turn; analytics without --admin-key exits 1', async () => {
    // 1 s at 40/s: 40 requests, taken in turn.
    const mixed = await cli([
      '--url',
      base,
      '--key',
      f.writeKey,
      '--admin-key',
      f.adminKey,
      '--mix',
      'ingest,analytics',
      '--rate',
      '40',
      '--duration',
      '1',
      '--json',
    ])
    expect(mixed.status, mixed.stderr).toBe(0)
    expect(JSON.parse(mixed.stdout).byKind).toEqual({
      ingest: { sent: 20, ok: 20, errors: 0 },
      analytics: { sent: 20, ok: 20, errors: 0 },
    })
    const noAdmin = await cli(['--url', base, '--key', f.writeKey, '--mix', 'analytics'])
    expect([noAdmin.status, noAdmin.stderr]).toEqual([1, expect.stringMatching(/--admin-key/)])
  })

  it('a bad key is counted by status and code and exits 1, unless --max-error-rate tolerates it', async () => {
    const bad = await cli([
      '--url',
      base,
      '--key',
      'sk_w_not-a-key',
      '--rate',
      '20',
      '--duration',
      '1',
      '--json',
    ])
    expect(bad.status).toBe(1)
    const s = JSON.parse(bad.stdout)
    expect(s).toMatchObject({ sent: 20, ok: 0, errors: 20, errorRate: 1 })
    expect(s.errorsByStatus).toEqual({ 401: 20 })
    expect(s.errorsByCode).toEqual({ STRATA_AUTH_INVALID: 20 })
    // Tolerated with --max-error-rate 1.
    const tolerated = await cli([
      '--url',
      base,
      '--key',
      'sk_w_not-a-key',
      '--rate',
      '10',
      '--duration',
      '0.5',
      '--max-error-rate',
      '1',
    ])
    expect(tolerated.status).toBe(0)
    expect(tolerated.stdout).toMatch(/status {4}401: 5/)
  })
})

describe('deploy/k6 scripts', () => {
  it.each(['ingest.js', 'analytics.js'])(
    '%s parses as a JS module, imports only k6, exports options and a default function',
    (name) => {
      const text = readFileSync(new URL(`../../../deploy/k6/${name}`, import.meta.url), 'utf8')
      // TypeScript's parser reads plain JS; k6 modules cannot be loaded by node, only parsed.
      const out = ts.transpileModule(text, {
        fileName: name,
        reportDiagnostics: true,
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      })
      expect(
        out.diagnostics?.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
      ).toEqual([])
      const sf = ts.createSourceFile(name, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS)
      const imports = sf.statements
        .filter(ts.isImportDeclaration)
        .map((s) => (s.moduleSpecifier as ts.StringLiteral).text)
      expect(imports.length).toBeGreaterThan(0)
      for (const m of imports) expect(m).toMatch(/^k6(\/|$)/)
      expect(text).toMatch(/^export const options = /m)
      expect(text).toMatch(/^export default function/m)
    },
  )
})

describe('runLoad against a slow or absent server', () => {
  // A stand-in that answers like POST /v1/events/batch after `delayMs`.
  async function slowServer(delayMs: number): Promise<{ url: string; close(): Promise<void> }> {
    const srv = createServer((req, res) => {
      req.resume()
      req.on('end', () =>
        setTimeout(() => {
          res.writeHead(202, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ accepted: 1, duplicates: 0, rejected: [] }))
        }, delayMs),
      )
    })
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
    return {
      url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
      close: () => new Promise<void>((r) => srv.close(() => r())),
    }
  }

  it('open loop: a request due while --concurrency are in flight is dropped and counted, not delayed', async () => {
    const s = await slowServer(200)
    try {
      const r = await runLoad({
        url: s.url,
        writeKey: 'sk_w_x',
        rate: 100,
        durationMs: 1000,
        concurrency: 5,
      })
      expect(r.scheduled).toBe(100)
      expect(r.sent + r.dropped).toBe(100)
      // 5 in flight for 200 ms each: about 25 sent in the second, the rest dropped.
      expect(r.sent).toBeLessThanOrEqual(40)
      expect(r.dropped).toBeGreaterThanOrEqual(60)
      expect(r.errorsByStatus).toEqual({ dropped: r.dropped })
      expect(r.errorsByCode).toEqual({ CLIENT_CONCURRENCY_LIMIT: r.dropped })
      expect(r.ok).toBe(r.sent)
      expect(r.latencyMs.p50).toBeGreaterThanOrEqual(200)
    } finally {
      await s.close()
    }
  })

  it('latency runs from the scheduled time; a refused connection is counted by its code', async () => {
    const s = await slowServer(100)
    const r = await runLoad({ url: s.url, writeKey: 'sk_w_x', rate: 20, durationMs: 500 })
    expect([r.sent, r.ok, r.errors]).toEqual([10, 10, 0])
    expect(r.latencyMs.p50).toBeGreaterThanOrEqual(100)
    expect(r.latencyMs.max).toBeLessThan(1000)
    await s.close()
    // A port that was just free: every request fails to connect. (Not the slow server's port:
    // fetch would first try the keep-alive socket it pooled there.)
    const gone = await slowServer(0)
    await gone.close()
    const down = await runLoad({ url: gone.url, writeKey: 'sk_w_x', rate: 20, durationMs: 500 })
    expect(down).toMatchObject({ sent: 10, ok: 0, errors: 10, errorRate: 1 })
    expect(down.errorsByStatus).toEqual({ network: 10 })
    expect(down.errorsByCode).toEqual({ ECONNREFUSED: 10 })
  })
})

// The real service (`strata start` from the built CLI) in a child process, for benches that
// measure it over HTTP with autocannon.
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)

export interface AutocannonResult {
  latency: { p50: number; p99: number; average: number; max: number }
  requests: { average: number; total: number }
  duration: number
  '2xx': number
  non2xx: number
  errors: number
  timeouts: number
  statusCodeStats?: Record<string, { count: number }>
}
export type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>
export const autocannon = require('autocannon') as Autocannon

const here = dirname(fileURLToPath(import.meta.url))
const CLI = resolve(here, '../../packages/server/dist/cli/main.js')

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => res(port))
    })
    s.on('error', rej)
  })
}

/**
 * Starts `strata start` on 127.0.0.1:`port` against `databaseUrl` and resolves once /readyz
 * answers. STRATA_BENCH_CHILD_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the
 * service (NODE_OPTIONS refuses --cpu-prof, and would profile the load generator too).
 */
export async function startService(
  databaseUrl: string,
  port: number,
  env: Record<string, string>,
): Promise<ChildProcess> {
  const nodeArgs = (process.env.STRATA_BENCH_CHILD_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'start'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`strata start exited with ${child.exitCode}`)
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`)
      if (r.ok) return child
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error('strata start did not become ready in 30 s')
    }
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** SIGTERM, then SIGKILL if the service has not exited within `graceMs`. */
export async function stopService(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((res) => child.once('exit', () => res()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

// Strata as a real child process: `strata start` from the TypeScript sources (see spawn.ts),
// configured by environment only, driven over HTTP, killed or stopped by its pid.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { signal, waitGone } from './ports.js'
import { cliEntry, repoRoot, tsNodeArgs } from './spawn.js'

export interface StrataProcessOptions {
  databaseUrl: string
  /** Absent: L1-only cache, no Redis. */
  redisUrl?: string
  /** @defaultValue 0 (any free port; the listening line tells which) */
  port?: number
  /** Operator token (≥ 16 chars). @defaultValue a random one */
  adminToken?: string
  /** STRATA_DATA_DIR; reuse it across restarts to keep the import directory. @defaultValue a temp dir */
  dataDir?: string
  /** @defaultValue 'info' (the listening line is logged at info) */
  logLevel?: string
  /** More environment (e.g. DATABASE_POOL_MAX). */
  env?: Record<string, string>
  /** How long to wait for the listening line and /readyz. @defaultValue 90 s */
  startTimeoutMs?: number
  /** Wait for /readyz 200 before resolving. @defaultValue true */
  waitReady?: boolean
}

export interface StrataExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface StrataProcess {
  /** http://127.0.0.1:<port> */
  url: string
  port: number
  pid: number
  adminToken: string
  dataDir: string
  /** Everything the process wrote so far (stdout + stderr, capped at the last 4 MB). */
  output(): string
  /** Resolves when the process has exited. */
  exited: Promise<StrataExit>
  /** Sends a signal to the process. */
  kill(sig: NodeJS.Signals): void
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it exited. Idempotent. */
  stop(graceMs?: number): Promise<StrataExit>
}

const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const c of running) if (c.pid) signal(c.pid, 'SIGKILL')
})

function childEnv(o: StrataProcessOptions, adminToken: string, dataDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  // The test runner's own DATABASE_URL / REDIS_URL / STRATA_* point at shared services: drop them.
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(DATABASE_|REDIS_|STRATA_|PG|CACHE_TTL_)/.test(k)) continue
    if (['PORT', 'HOST', 'LOG_LEVEL', 'NODE_OPTIONS', 'VITEST', 'TEST'].includes(k)) continue
    env[k] = v
  }
  Object.assign(env, {
    DATABASE_URL: o.databaseUrl,
    HOST: '127.0.0.1',
    PORT: String(o.port ?? 0),
    STRATA_ADMIN_TOKEN: adminToken,
    STRATA_DATA_DIR: dataDir,
    LOG_LEVEL: o.logLevel ?? 'info',
    ...(o.redisUrl ? { REDIS_URL: o.redisUrl } : {}),
    ...o.env,
  })
  return env
}

/** GET /readyz until 200; throws after `timeoutMs`. */
export async function waitReady(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) })
      last = `${res.status} ${await res.text()}`
      if (res.status === 200) return
    } catch (err) {
      last = String((err as Error).cause ?? err)
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`${url}/readyz not 200 within ${timeoutMs} ms (last: ${last})`)
}

export async function startStrata(o: StrataProcessOptions): Promise<StrataProcess> {
  const adminToken = o.adminToken ?? `faults-${randomBytes(12).toString('hex')}`
  const ownDir = o.dataDir === undefined
  const dataDir = o.dataDir ?? (await mkdtemp(join(tmpdir(), 'strata-faults-data-')))
  if (ownDir) await chmod(dataDir, 0o755)
  const child = spawn(process.execPath, [...tsNodeArgs, cliEntry, 'start'], {
    cwd: repoRoot,
    env: childEnv(o, adminToken, dataDir),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  let out = ''
  const append = (d: Buffer) => {
    out += d.toString()
    if (out.length > 4_000_000) out = out.slice(-4_000_000)
  }
  child.stdout!.on('data', append)
  child.stderr!.on('data', append)
  const exited = new Promise<StrataExit>((resolve) =>
    child.once('exit', (code, sig) => {
      running.delete(child)
      if (ownDir) void rm(dataDir, { recursive: true, force: true }).catch(() => {})
      resolve({ code, signal: sig })
    }),
  )
  const timeoutMs = o.startTimeoutMs ?? 90_000
  let url: string
  try {
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`strata: no listening line within ${timeoutMs} ms:\n${out}`)),
        timeoutMs,
      )
      const onData = () => {
        const m = /strata listening on (http:\/\/[^"\s]+)/.exec(out)
        if (!m) return
        clearTimeout(timer)
        child.stdout!.off('data', onData)
        resolve(m[1]!)
      }
      child.stdout!.on('data', onData)
      void exited.then((e) => {
        clearTimeout(timer)
        reject(new Error(`strata exited (${e.code ?? e.signal}) before listening:\n${out}`))
      })
    })
    if (o.waitReady !== false) await waitReady(url, timeoutMs)
  } catch (err) {
    if (child.pid) signal(child.pid, 'SIGKILL')
    await exited
    throw err
  }
  let stopping: Promise<StrataExit> | undefined
  return {
    url,
    port: Number(new URL(url).port),
    pid: child.pid!,
    adminToken,
    dataDir,
    output: () => out,
    exited,
    kill: (sig) => signal(child.pid!, sig),
    stop: (graceMs = 30_000) =>
      (stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          signal(child.pid!, 'SIGCONT')
          signal(child.pid!, 'SIGTERM')
          if (!(await waitGone(child.pid!, graceMs))) signal(child.pid!, 'SIGKILL')
        }
        return exited
      })()),
  }
}

export interface ProjectKeys {
  projectId: string
  writeKey: string
  adminKey: string
}

/** `POST /v1/projects` with the operator token: a tenant and its write/admin keys. */
export async function createProject(s: Pick<StrataProcess, 'url' | 'adminToken'>, name: string) {
  const res = await fetch(`${s.url}/v1/projects`, {
    method: 'POST',
    headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  })
  if (res.status !== 201 && res.status !== 200)
    throw new Error(`POST /v1/projects: ${res.status} ${await res.text()}`)
  const body = (await res.json()) as {
    project: { id: string }
    keys: { write: string; admin: string }
  }
  return {
    projectId: body.project.id,
    writeKey: body.keys.write,
    adminKey: body.keys.admin,
  } satisfies ProjectKeys
}

// Supervisors (systemd, Docker, Kubernetes, PM2) signal one pid and expect the whole service to
// stop. These tests start Strata the two documented ways, `npm start` (the repository's script
// line, run by npm) and the production command `node packages/server/dist/cli/main.js start`,
// send SIGTERM to exactly the pid they started, and check that it exits 0 and leaves no process
// behind: no orphaned node under a shell, no embedded PostgreSQL.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { chmod, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'
import { alive, signal, waitGone } from '../../../test/support/ports.js'
import { repoRoot } from '../../../test/support/spawn.js'
import { waitReady } from '../../../test/support/strata-process.js'

const EXIT_BOUND_MS = 15_000
const ADMIN_TOKEN = 'process-model-token-0123456789'
const prodEntry = join(repoRoot, 'packages/server/dist/cli/main.js')

/** Parent pid of every process, from /proc/<pid>/stat (field 4, after the `(comm)`). */
async function parents(): Promise<Map<number, number>> {
  const map = new Map<number, number>()
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '')
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (rest[1]) map.set(Number(name), Number(rest[1]))
  }
  return map
}

/** Every process below `root`: its parent and command line. */
async function descendants(root: number): Promise<Map<number, { ppid: number; cmd: string }>> {
  const ppids = await parents()
  const found = new Map<number, { ppid: number; cmd: string }>()
  let frontier = [root]
  while (frontier.length) {
    const next: number[] = []
    for (const [pid, ppid] of ppids)
      if (frontier.includes(ppid) && !found.has(pid)) {
        const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
        found.set(pid, { ppid, cmd: cmd.replaceAll('\0', ' ').trim() })
        next.push(pid)
      }
    frontier = next
  }
  return found
}

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  // The runner's DATABASE_URL / REDIS_URL / STRATA_* point at shared services: drop them.
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(DATABASE_|REDIS_|STRATA_|PG|CACHE_TTL_|VITEST)/.test(k)) continue
    if (['PORT', 'HOST', 'LOG_LEVEL', 'NODE_OPTIONS', 'TEST'].includes(k)) continue
    env[k] = v
  }
  return {
    ...env,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    STRATA_ADMIN_TOKEN: ADMIN_TOKEN,
    ...extra,
  }
}

interface Run {
  pid: number
  url: string
  output(): string
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

async function launch(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd = repoRoot,
): Promise<Run> {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, sig) => resolve({ code, signal: sig })),
  )
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no listening line within 60 s:\n${out}`)),
      60_000,
    )
    const onData = () => {
      const m = /strata listening on (http:\/\/[^"\s]+)/.exec(out)
      if (!m) return
      clearTimeout(timer)
      resolve(m[1]!)
    }
    child.stdout.on('data', onData)
    void exit.then((e) => {
      clearTimeout(timer)
      reject(new Error(`exited (${e.code ?? e.signal}) before listening:\n${out}`))
    })
  }).catch(async (err: unknown) => {
    await killTree(child.pid!)
    throw err
  })
  await waitReady(url, 30_000)
  return { pid: child.pid!, url, output: () => out, exit }
}

/** Cleanup after a failed assertion, so a broken shutdown does not leak into the next test. */
async function killTree(pid: number): Promise<void> {
  const below = await descendants(pid)
  signal(pid, 'SIGKILL')
  for (const p of below.keys()) signal(p, 'SIGKILL')
}

/** SIGTERM to exactly `run.pid`; the exit, how long it took and what was left running. */
async function terminate(run: Run) {
  const before = await descendants(run.pid)
  const started = Date.now()
  signal(run.pid, 'SIGTERM')
  const exit = await Promise.race([
    run.exit,
    new Promise<undefined>((r) => setTimeout(() => r(undefined), EXIT_BOUND_MS)),
  ])
  const elapsedMs = Date.now() - started
  // Allow the last children a moment to be reaped after the parent's exit.
  await Promise.all([...before.keys()].map((p) => waitGone(p, 2_000)))
  const left = [...before].filter(([p]) => alive(p))
  if (!exit || left.length) {
    await killTree(run.pid)
    for (const [p] of left) signal(p, 'SIGKILL')
  }
  return { exit, elapsedMs, before, left }
}

/**
 * POST /v1/projects whose body arrives in two parts; `finishAfter` sends the rest later. Its
 * connection stays open afterwards, as a load balancer's keep-alive connection does.
 */
function slowRequest(url: string) {
  const body = JSON.stringify({ name: `drain-${Date.now()}` })
  const agent = new Agent({ keepAlive: true, timeout: 120_000 })
  cleanup.push(async () => agent.destroy())
  const req = request(`${url}/v1/projects`, {
    agent,
    method: 'POST',
    headers: {
      authorization: `Bearer ${ADMIN_TOKEN}`,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    },
  })
  const status = new Promise<number>((resolve, reject) => {
    req.once('response', (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.once('error', reject)
  })
  req.flushHeaders()
  const half = Math.floor(body.length / 2)
  const started = new Promise<void>((resolve) => req.write(body.slice(0, half), () => resolve()))
  return {
    started,
    finishAfter: async (ms: number) => {
      await new Promise((r) => setTimeout(r, ms))
      req.end(body.slice(half))
      return status
    },
  }
}

async function portClosed(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) })
    return false
  } catch {
    return true
  }
}

const cleanup: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {})
})

beforeAll(() => {
  // The server's compiled code, fresh (incremental: quick when up to date). Only `tsc -b`: the
  // dashboard's build empties its dist first, which other test files may be serving right now.
  const tsc = spawnSync(
    process.execPath,
    [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-b'],
    {
      cwd: repoRoot,
      encoding: 'utf8',
    },
  )
  expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0)
  expect(existsSync(prodEntry)).toBe(true)
}, 180_000)

/**
 * A directory where `npm start` runs the repository's start script line verbatim, with a
 * `build` script that does nothing (done in beforeAll) and `packages` linked to the repository's.
 */
async function startScriptDir(): Promise<string> {
  const root = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>
  }
  const dir = await mkdtemp(join(tmpdir(), 'strata-npm-start-'))
  cleanup.push(() => rm(dir, { recursive: true, force: true }))
  await symlink(join(repoRoot, 'packages'), join(dir, 'packages'))
  const pkg = {
    name: 'strata-npm-start',
    private: true,
    type: 'module',
    scripts: { build: 'true', start: root.scripts.start },
  }
  await writeFile(join(dir, 'package.json'), JSON.stringify(pkg))
  return dir
}

async function tempDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-process-model-'))
  // The embedded cluster runs as the `postgres` OS user when we are root: it must traverse this.
  await chmod(dir, 0o755)
  cleanup.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

describe('process model: SIGTERM to the started pid stops everything', () => {
  it('the start script execs node, so npm forwards signals to the service itself', async () => {
    const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>
    }
    // npm runs scripts through `sh -c`: without exec, sh stays between npm and node, and a
    // SIGTERM npm forwards to sh kills sh alone, orphaning node and its PostgreSQL.
    expect(pkg.scripts.start).toMatch(/&& exec node packages\/server\/dist\/cli\/main\.js start$/)
  })

  it('`npm start` (DATABASE_URL): SIGTERM to the npm pid drains and exits 0, no child left', async () => {
    const db: TestDatabase = await createTestDatabase('procmodel')
    cleanup.push(() => db.drop())
    const dataDir = await tempDataDir()
    const run = await launch(
      'npm',
      ['start'],
      childEnv({ DATABASE_URL: db.url, STRATA_DATA_DIR: dataDir }),
      await startScriptDir(),
    )
    const tree = await descendants(run.pid)
    // npm's child is node itself (sh replaced by exec), not a shell.
    const direct = [...tree.values()].filter((p) => p.ppid === run.pid).map((p) => p.cmd)
    expect(direct).toContainEqual(
      expect.stringMatching(/node .*packages\/server\/dist\/cli\/main\.js start$/),
    )
    expect(direct.filter((cmd) => /^(\S*\/)?sh -c/.test(cmd))).toEqual([])

    // A request in flight when SIGTERM arrives (its body still uploading) is answered before
    // the process exits: the drain.
    const inFlight = slowRequest(run.url)
    await inFlight.started
    const finishing = inFlight.finishAfter(500)
    const { exit, elapsedMs, before, left } = await terminate(run)
    console.log(`npm start: exited ${JSON.stringify(exit)} ${elapsedMs} ms after SIGTERM`)
    expect(await finishing).toBe(201)
    expect(exit, run.output()).toEqual({ code: 0, signal: null })
    expect(elapsedMs).toBeLessThan(EXIT_BOUND_MS)
    expect(before.size).toBeGreaterThan(0)
    expect(left, run.output()).toEqual([])
    expect(await portClosed(run.url)).toBe(true)
    expect(run.output()).toMatch(/SIGTERM: shutting down/)
    expect(run.output()).toMatch(/"msg":"stopped"/)
  }, 120_000)

  it('production command with embedded PostgreSQL: SIGTERM stops the service and the postmaster', async () => {
    const dataDir = await tempDataDir()
    const run = await launch(
      process.execPath,
      [prodEntry, 'start'],
      childEnv({ STRATA_DATA_DIR: dataDir }),
    )
    const pidFile = await readFile(join(dataDir, 'pg', 'postmaster.pid'), 'utf8')
    const postmaster = Number(pidFile.split('\n')[0])
    expect(alive(postmaster)).toBe(true)
    const tree = await descendants(run.pid)
    expect(tree.has(postmaster)).toBe(true)

    const { exit, elapsedMs, left } = await terminate(run)
    console.log(
      `production command, embedded: exited ${JSON.stringify(exit)} ${elapsedMs} ms after SIGTERM`,
    )
    expect(exit, run.output()).toEqual({ code: 0, signal: null })
    expect(elapsedMs).toBeLessThan(EXIT_BOUND_MS)
    expect(alive(postmaster)).toBe(false)
    expect(left, run.output()).toEqual([])
    expect(await portClosed(run.url)).toBe(true)
    expect(run.output()).toMatch(/embedded PostgreSQL stopped/)
  }, 120_000)
})

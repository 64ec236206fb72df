// A throw-away redis-server owned by one test file, on a spare port: stoppable, freezable
// (SIGSTOP/SIGCONT of its pid, or CLIENT PAUSE), restartable on the same port, configurable.
// Never the shared 6379 server, never FLUSHALL.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { alive, freePort, signal, waitGone } from './ports.js'

export interface PrivateRedisOptions {
  /** Extra `--name value` arguments for redis-server (e.g. `{ maxmemory: '1mb' }`). */
  config?: Record<string, string>
}

export interface PrivateRedis {
  port: number
  url: string
  /** Pid of the current redis-server (changes on restart). */
  pid(): number
  /** A client that fails fast (caller disconnects it). */
  client(): Redis
  /** Runs one command on a short-lived connection. */
  command(name: string, ...args: (string | number)[]): Promise<unknown>
  /** SIGKILL the server (as a crash would). */
  kill(): Promise<void>
  /** Starts it again on the same port (after kill()), empty. */
  restart(): Promise<void>
  /** SIGSTOP: the socket stays open, nothing answers. */
  freeze(): void
  /** SIGCONT after freeze(). */
  thaw(): void
  /** Stops the server by its pid and removes its directory. Idempotent. */
  stop(): Promise<void>
}

const running = new Map<string, () => void>()
process.once('exit', () => {
  for (const kill of running.values()) kill()
})

export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-private-redis-'))
  let child: ChildProcess | undefined
  let port = 0
  let stopped = false

  const args = () => [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--logfile', join(dir, 'redis.log'),
    ...Object.entries(options.config ?? {}).flatMap(([k, v]) => [`--${k}`, v]),
  ] // prettier-ignore

  const ping = async (): Promise<boolean> => {
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 })
    r.on('error', () => {})
    try {
      await r.connect()
      return (await r.ping()) === 'PONG'
    } catch {
      return false
    } finally {
      r.disconnect()
    }
  }

  const launch = async (): Promise<void> => {
    const c = spawn('redis-server', args(), { stdio: 'ignore' })
    child = c
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()))
    for (let i = 0; ; i++) {
      if (await ping()) return
      if (c.exitCode !== null || c.signalCode !== null || i > 200) {
        c.kill('SIGKILL')
        await exited
        throw new Error(`redis-server on ${port} did not start (see ${dir}/redis.log)`)
      }
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  for (let attempt = 1; ; attempt++) {
    port = await freePort()
    try {
      await launch()
      break
    } catch (err) {
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true })
        throw err
      }
    }
  }
  running.set(dir, () => {
    if (child?.pid) {
      signal(child.pid, 'SIGCONT')
      signal(child.pid, 'SIGKILL')
    }
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {
      /* best effort */
    }
  })

  const pid = () => {
    if (!child?.pid) throw new Error('redis-server is not running')
    return child.pid
  }
  const client = () => {
    const r = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, commandTimeout: 5000 })
    r.on('error', () => {})
    return r
  }
  const killCurrent = async (sig: NodeJS.Signals) => {
    const p = child?.pid
    if (p === undefined || !alive(p)) return
    signal(p, 'SIGCONT')
    signal(p, sig)
    if (!(await waitGone(p, 10_000))) {
      signal(p, 'SIGKILL')
      await waitGone(p, 5_000)
    }
  }

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid,
    client,
    async command(name, ...rest) {
      const r = client()
      try {
        return await r.call(name, ...rest)
      } finally {
        r.disconnect()
      }
    },
    kill: () => killCurrent('SIGKILL'),
    restart: launch,
    freeze: () => signal(pid(), 'SIGSTOP'),
    thaw: () => signal(pid(), 'SIGCONT'),
    async stop() {
      if (stopped) return
      stopped = true
      running.delete(dir)
      await killCurrent('SIGTERM')
      await rm(dir, { recursive: true, force: true })
    },
  }
}

// A throw-away 3-master Redis Cluster for tests: real redis-server processes on spare ports,
// created with `redis-cli --cluster create`, stopped by their own PIDs (never the system Redis).
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface RedisClusterNode {
  host: string
  port: number
}

export interface RedisCluster {
  nodes: RedisClusterNode[]
  /** Kills exactly the servers this fixture started and removes their directory. */
  stop(): Promise<void>
}

export interface StartRedisClusterOptions {
  /** First port to try; the fixture scans upwards for 3 free ports (and their +10000 bus ports). */
  basePort?: number
  /** Number of masters. @defaultValue 3 */
  masters?: number
}

const HOST = '127.0.0.1'

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, HOST, () => srv.close(() => resolve(true)))
  })
}

async function sparePorts(count: number, from: number): Promise<number[]> {
  const ports: number[] = []
  // Cluster nodes also listen on port + 10000 (cluster bus); both must be free.
  for (let p = from; ports.length < count && p < from + 800; p++) {
    if ((await portFree(p)) && (await portFree(p + 10_000))) ports.push(p)
  }
  if (ports.length < count) throw new Error(`no ${count} free ports from ${from}`)
  return ports
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', HOST, '-p', String(port), ...args], {
    timeout: 10_000,
  })
  return stdout
}

async function readPid(file: string): Promise<number | undefined> {
  for (let i = 0; i < 50; i++) {
    const text = await readFile(file, 'utf8').catch(() => '')
    const pid = Number.parseInt(text, 10)
    if (pid > 0) return pid
    await sleep(50)
  }
  return undefined
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export async function startRedisCluster(
  options: StartRedisClusterOptions = {},
): Promise<RedisCluster> {
  // Another test file may grab the same free ports between our check and redis-server's bind:
  // with a random base, simply try again elsewhere.
  for (let attempt = 1; ; attempt++) {
    const base = options.basePort ?? 7100 + Math.floor(Math.random() * 80) * 10
    try {
      return await startOnce(options.masters ?? 3, base)
    } catch (err) {
      if (options.basePort !== undefined || attempt >= 3) throw err
    }
  }
}

// Servers still running when the test process exits (crash, timeout) are killed, not orphaned.
const running = new Set<number>()
process.once('exit', () => {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      /* gone */
    }
  }
})

async function startOnce(masters: number, base: number): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-redis-cluster-'))
  const pids: number[] = []

  const stop = async (): Promise<void> => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGTERM')
      } catch {
        /* already gone */
      }
    }
    for (const pid of pids) {
      for (let i = 0; i < 40 && alive(pid); i++) await sleep(50)
      if (alive(pid)) process.kill(pid, 'SIGKILL')
    }
    for (const pid of pids) running.delete(pid)
    pids.length = 0
    await rm(dir, { recursive: true, force: true })
  }

  try {
    const ports = await sparePorts(masters, base)
    for (const port of ports) {
      const pidfile = join(dir, `${port}.pid`)
      await run('redis-server', [
        '--port', String(port),
        '--bind', HOST,
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', '2000',
        '--daemonize', 'yes',
        '--save', '',
        '--appendonly', 'no',
        '--dir', dir,
        '--pidfile', pidfile,
        '--logfile', join(dir, `${port}.log`),
      ]) // prettier-ignore
      const pid = await readPid(pidfile)
      if (!pid) throw new Error(`redis-server on ${port} did not write ${pidfile}`)
      pids.push(pid)
      running.add(pid)
    }
    for (const port of ports) {
      for (let i = 0; ; i++) {
        if ((await cli(port, 'PING').catch(() => '')).trim() === 'PONG') break
        if (i > 100) throw new Error(`redis-server on ${port} did not answer PING`)
        await sleep(50)
      }
    }
    await run(
      'redis-cli',
      [
        '--cluster', 'create',
        ...ports.map((p) => `${HOST}:${p}`),
        '--cluster-replicas', '0',
        '--cluster-yes',
      ], // prettier-ignore
      { timeout: 30_000 },
    )
    for (const port of ports) {
      for (let i = 0; ; i++) {
        if ((await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) break
        if (i > 200) throw new Error(`cluster node ${port} never reached cluster_state:ok`)
        await sleep(50)
      }
    }
    return { nodes: ports.map((port) => ({ host: HOST, port })), stop }
  } catch (err) {
    await stop()
    throw err
  }
}

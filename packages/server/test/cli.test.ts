import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createTestDatabase } from '../../../test/support/pg.js'
import { cliEntry, repoRoot, tsNodeArgs } from '../../../test/support/spawn.js'

const baseEnv = () => {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info' }
  for (const k of [
    'DATABASE_URL',
    'REDIS_URL',
    'PORT',
    'VITEST',
    'VITEST_POOL_ID',
    'VITEST_WORKER_ID',
  ])
    delete env[k]
  return env
}

function cli(args: string[], env: NodeJS.ProcessEnv = baseEnv()) {
  return spawnSync(process.execPath, [...tsNodeArgs, cliEntry, ...args], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  })
}

const tmpDirs: string[] = []
afterAll(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true })
})

describe('strata CLI', () => {
  it('--help lists the commands and exits 0', () => {
    const r = cli(['--help'])
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/start\s+run the service/)
    expect(r.stdout).toMatch(/migrate\s+apply pending/)
  })

  it('an unknown command exits 1 with the help', () => {
    const r = cli(['frobnicate'])
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/unknown command "frobnicate"/)
  })

  it('bad configuration exits non-zero with one clear line per variable', () => {
    const r = cli(['start'], { ...baseEnv(), PORT: 'eighty', DATABASE_URL: 'mysql://nope' })
    expect(r.status).toBe(1)
    const lines = r.stderr.trim().split('\n')
    expect(lines).toHaveLength(2)
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^strata: invalid configuration: PORT: must be a whole number \(got "eighty"\)$/,
      ),
    )
    expect(lines).toContainEqual(
      expect.stringMatching(/^strata: invalid configuration: DATABASE_URL: /),
    )
  })

  it('migrate applies against DATABASE_URL and is idempotent', async () => {
    const db = await createTestDatabase('cli')
    try {
      const env = { ...baseEnv(), DATABASE_URL: db.url }
      const first = cli(['migrate'], env)
      // Logs (e.g. slow-query warnings on a loaded machine) go to stderr; stdout is the answer.
      expect(first.status).toBe(0)
      expect(first.stdout).toMatch(/^database: PostgreSQL at /m)
      expect(first.stdout).toMatch(/^\d+ migration\(s\) applied$/m)
      expect(first.stdout).not.toMatch(/"level":/)
      const second = cli(['migrate'], env)
      expect(second.status).toBe(0)
      expect(second.stdout).toMatch(/database is up to date/)
    } finally {
      await db.drop()
    }
  })

  it('start with no DATABASE_URL runs embedded PostgreSQL, answers /readyz, and stops cleanly on SIGTERM', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-embedded-'))
    tmpDirs.push(dataDir)
    await chmod(dataDir, 0o755) // as root, Postgres runs as the postgres OS user and must traverse it
    const child = spawn(process.execPath, [...tsNodeArgs, cliEntry, 'start'], {
      cwd: repoRoot,
      env: { ...baseEnv(), STRATA_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    )
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no listening line within 60 s:\n${output}`)),
          60_000,
        )
        const onData = () => {
          const m = /strata listening on (http:\/\/[^"\s]+)/.exec(output)
          if (m) {
            clearTimeout(timer)
            resolve(m[1]!)
          }
        }
        child.stdout.on('data', onData)
        void exited.then((code) => reject(new Error(`exited ${code} before listening:\n${output}`)))
      })
      expect(output).toMatch(/database: embedded PostgreSQL on 127\.0\.0\.1:\d+/)
      const ready = await fetch(`${url}/readyz`)
      expect(ready.status).toBe(200)
      expect(existsSync(join(dataDir, 'admin-token'))).toBe(true)
      expect(output).toMatch(/Operator token/)
    } finally {
      child.kill('SIGTERM')
    }
    expect(await exited).toBe(0)
    // Embedded Postgres shut down with us: no postmaster left behind.
    expect(existsSync(join(dataDir, 'pg', 'postmaster.pid'))).toBe(false)
  }, 120_000)
})

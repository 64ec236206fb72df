import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'
import { cliEntry, repoRoot, tsNodeArgs } from '../../../test/support/spawn.js'

const fixtures = fileURLToPath(new URL('../../importer/test/fixtures/', import.meta.url))
let tdb: TestDatabase
let dir: string

beforeAll(async () => {
  tdb = await createTestDatabase('impcli')
  const c = new pg.Client({ connectionString: tdb.url })
  await c.connect()
  await c.query(`CREATE TABLE orgs (id serial PRIMARY KEY, code text UNIQUE NOT NULL);
    INSERT INTO orgs (code) VALUES ('ORG1'), ('ORG2');
    CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, name text, org_id int REFERENCES orgs (id), created date)`)
  await c.end()
  dir = mkdtempSync(join(tmpdir(), 'strata-impcli-'))
  for (const f of ['legacy-users.csv', 'legacy-users.spec.json'])
    copyFileSync(join(fixtures, f), join(dir, f))
})
afterAll(async () => {
  await tdb?.drop()
  rmSync(dir, { recursive: true, force: true })
})

function strata(args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: tdb.url, LOG_LEVEL: 'warn' }
  for (const k of ['VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID', 'REDIS_URL']) delete env[k]
  return spawnSync(process.execPath, [...tsNodeArgs, cliEntry, 'import', ...args], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  })
}

async function truncate() {
  const c = new pg.Client({ connectionString: tdb.url })
  await c.connect()
  await c.query('TRUNCATE users')
  await c.end()
}

describe('strata import', () => {
  it('prints the job id first, plain progress lines, a summary, and exits 2 with rejects', async () => {
    const r = strata([join(dir, 'legacy-users.spec.json')])
    expect(r.stderr).toBe('')
    const lines = r.stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^job [0-9a-f-]{36}$/)
    expect(r.stdout).toMatch(/^progress: 100\.0% 8 rows read, 2 loaded, 6 rejected/m)
    expect(r.stdout).toMatch(
      /^completed: read 8 = loaded 2 \+ rejected 6 \+ skipped 0 in [\d.]+ s/m,
    )
    expect(r.stdout).toContain(`rejected rows: ${join(dir, 'legacy-users.rejects.csv')}`)
    expect(r.status).toBe(2)
    const rejects = readFileSync(join(dir, 'legacy-users.rejects.csv'), 'utf8')
    expect(rejects).toBe(readFileSync(join(fixtures, 'legacy-users.expected-rejects.csv'), 'utf8'))
  })

  it('exits 0 when every row loads (--file replaces the source)', async () => {
    await truncate()
    writeFileSync(
      join(dir, 'clean.csv'),
      'id,email,name,org,created\n10,a@x.io,A,ORG1,2024-01-01\n11,b@x.io,B,,\n',
    )
    const r = strata([join(dir, 'legacy-users.spec.json'), '--file', join(dir, 'clean.csv')])
    expect(r.stdout).toMatch(/^completed: read 2 = loaded 2 \+ rejected 0 \+ skipped 0/m)
    expect(r.status).toBe(0)
  })

  it('exits 1 when the job pauses on the error threshold, and --resume with a higher threshold completes it', async () => {
    await truncate()
    const spec = JSON.parse(readFileSync(join(dir, 'legacy-users.spec.json'), 'utf8'))
    spec.errors.maxErrorRate = 0.5
    writeFileSync(join(dir, 'strict.spec.json'), JSON.stringify(spec))
    const r = strata([join(dir, 'strict.spec.json')])
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/^paused: read 8 = loaded 2 \+ rejected 6/m)
    expect(r.stdout).toMatch(/reason: error rate 75\.00% .* above maxErrorRate 50\.00%/)
    const jobId = /^job (\S+)$/m.exec(r.stdout)![1]!
    expect(r.stdout).toContain(`resume with: strata import --resume ${jobId}`)
    const resumed = strata(['--resume', jobId, '--max-error-rate', '0.9'])
    expect(resumed.stdout.split('\n')[0]).toBe(`job ${jobId}`)
    expect(resumed.stdout).toMatch(/^completed: read 8 = loaded 2 \+ rejected 6/m)
    expect(resumed.status).toBe(2)
  })

  it('reports a bad spec with its code and field, exit 1', () => {
    writeFileSync(
      join(dir, 'bad.spec.json'),
      JSON.stringify({
        source: { format: 'csv', path: 'x.csv' },
        target: { table: 'users', mode: 'merge' },
        columns: { id: {} },
      }),
    )
    const r = strata([join(dir, 'bad.spec.json')])
    expect(r.status).toBe(1)
    expect(r.stderr.trim()).toBe(
      'strata import: STRATA_IMPORT_INVALID_SPEC: import spec: target.mode must be one of insert, upsert, skip-existing, update, delete, archive, purge',
    )
  })

  it('a job failed on a spec error prints one error line and offers no resume', async () => {
    writeFileSync(join(dir, 'h.csv'), 'id,email\n20,a@x.io\n')
    writeFileSync(
      join(dir, 'header.spec.json'),
      JSON.stringify({
        source: { format: 'csv', path: 'h.csv' },
        target: { table: 'users' },
        columns: { id: { type: 'int' }, email: { from: 'mail' } },
      }),
    )
    const r = strata([join(dir, 'header.spec.json')])
    expect(r.status).toBe(1)
    expect(r.stderr).toBe(
      'error STRATA_IMPORT_INVALID_SPEC: import spec: columns.email.from: the CSV header has no field "mail" (fields: id, email)\n',
    )
    expect(r.stdout).toMatch(/^failed: read 0 /m)
    expect(r.stdout).not.toContain('resume with')
    const jobId = /^job (\S+)$/m.exec(r.stdout)![1]!
    const status = strata(['--status', jobId])
    expect(JSON.parse(status.stdout)).toMatchObject({ status: 'failed', resumable: false })
    const again = strata(['--resume', jobId])
    expect(again.status).toBe(1)
    expect(again.stderr).toMatch(/^strata import: STRATA_IMPORT_JOB_NOT_RESUMABLE: /)
  })
})

describe('strata import, Ctrl-C', () => {
  it('pauses within a second of SIGINT, exits 130, and --resume completes the job', async () => {
    const c = new pg.Client({ connectionString: tdb.url })
    await c.connect()
    await c.query('CREATE TABLE big (id int NOT NULL, email text NOT NULL)')
    const ROWS = 300_000
    const lines = ['id,email']
    for (let i = 1; i <= ROWS; i++) lines.push(`${i},u${i}@x.io`)
    writeFileSync(join(dir, 'big.csv'), lines.join('\n') + '\n')
    writeFileSync(
      join(dir, 'big.spec.json'),
      JSON.stringify({
        source: { format: 'csv', path: 'big.csv' },
        target: { table: 'big' },
        columns: { id: { type: 'int' }, email: { type: 'email', required: true } },
        batch: { initial: 20_000, min: 20_000, max: 20_000 },
      }),
    )
    const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: tdb.url, LOG_LEVEL: 'warn' }
    for (const k of ['VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID', 'REDIS_URL']) delete env[k]
    const child = spawn(
      process.execPath,
      [...tsNodeArgs, cliEntry, 'import', join(dir, 'big.spec.json')],
      { cwd: repoRoot, env },
    )
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    // Interrupted once the first batch committed: rows are loading.
    for (let i = 0; i < 600 && !/^job /m.test(stdout); i++)
      await new Promise((r) => setTimeout(r, 50))
    for (let i = 0; i < 600; i++) {
      const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM big')
      if (rows[0]!.n > 0) break
      await new Promise((r) => setTimeout(r, 20))
    }
    const t0 = performance.now()
    child.kill('SIGINT')
    const code = await exited
    const took = performance.now() - t0
    expect(code).toBe(130)
    // The pause itself takes under a second (pause-signal.test.ts); this adds closing the pool.
    expect(took).toBeLessThan(3000)
    expect(stdout).toMatch(/^paused: read [\d,]+ = loaded/m)
    const jobId = /^job (\S+)$/m.exec(stdout)![1]!
    const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM big')
    expect(rows[0]!.n).toBeLessThan(ROWS)
    const resumed = strata(['--resume', jobId])
    expect(resumed.status).toBe(0)
    const after = await c.query<{ n: number; d: number }>(
      'SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM big',
    )
    expect(after.rows[0]).toEqual({ n: ROWS, d: ROWS })
    await c.end()
  }, 120_000)
})

import { spawnSync } from 'node:child_process'
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'
import { cliEntry, repoRoot, tsNodeArgs } from '../../../test/support/spawn.js'

let tdb: TestDatabase

beforeAll(async () => {
  tdb = await createTestDatabase('ansc')
})
afterAll(async () => {
  await tdb?.drop()
})

function cli(args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: tdb.url, LOG_LEVEL: 'warn' }
  for (const k of ['REDIS_URL', 'VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID']) delete env[k]
  return spawnSync(process.execPath, [...tsNodeArgs, cliEntry, ...args], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  })
}

it('strata seed creates a project and writes the asked-for rows with COPY', async () => {
  const r = cli(['seed', '--events', '3000', '--activities', '1000', '--days', '10', '--json'])
  expect(r.status, r.stderr).toBe(0)
  const out = JSON.parse(r.stdout) as { project: string; keys: { admin: string }; logins: number }
  expect(out.logins).toBe(3000)
  expect(out.keys.admin).toMatch(/^sk_a_/)
  const client = new pg.Client({ connectionString: tdb.url })
  await client.connect()
  try {
    const n = await client.query<{ l: number; a: number; r: number }>(
      `SELECT (SELECT count(*)::int FROM login_events WHERE project_id = $1) AS l,
              (SELECT count(*)::int FROM activity_logs WHERE project_id = $1) AS a,
              (SELECT sum(count)::int FROM login_rollups_hourly WHERE project_id = $1) AS r`,
      [out.project],
    )
    expect(n.rows[0]).toEqual({ l: 3000, a: 1000, r: 3000 })
  } finally {
    await client.end()
  }
}, 90_000)

it('refuses bad numbers with a clear line and exit 1', () => {
  const r = cli(['seed', '--events', 'lots'])
  expect(r.status).toBe(1)
  expect(r.stderr).toMatch(/--events must be a non-negative integer/)
})

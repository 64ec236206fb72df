// Runs each example under examples/ the way its README says, against a real service and a
// fresh database, and checks what it left in the database.
import { spawn } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventsMigrations } from '@strata/events'
import { createDatabase, migrate, type Database } from '@strata/pg'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../packages/server/src/app.js'
import { defaultConfig } from '../packages/server/src/config.js'
import { createTestDatabase, type TestDatabase } from './support/pg.js'
import { cliEntry, repoRoot, tsNodeArgs } from './support/spawn.js'

const ADMIN_TOKEN = 'examples-operator-token-0123456789'
let tdb: TestDatabase
let db: Database
let app: FastifyInstance
let baseUrl: string
const tmpDirs: string[] = []

beforeAll(async () => {
  tdb = await createTestDatabase('examples')
  db = await createDatabase({ url: tdb.url, pool: { max: 4 } })
  await migrate(db, [eventsMigrations])
  app = await buildApp(defaultConfig({ databaseUrl: tdb.url, adminToken: ADMIN_TOKEN }), {
    db,
    logger: pino({ level: 'silent' }),
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await app?.close()
  await db?.close()
  await tdb?.drop()
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true })
})

/** Runs a script from source (tsx, workspace packages from src) and collects its output. */
function run(
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd = repoRoot,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', ...env }
  for (const k of ['VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID', 'REDIS_URL']) delete childEnv[k]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...tsNodeArgs, ...args], { cwd, env: childEnv })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 18_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe('examples', () => {
  it('send-events: the Segment SDK and fetch both land in events', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/projects',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      payload: { name: 'examples' },
    })
    expect(res.statusCode).toBe(201)
    const { project, keys } = res.json<{ project: { id: string }; keys: { write: string } }>()

    const r = await run([join(repoRoot, 'examples/send-events/send-events.ts')], {
      STRATA_URL: baseUrl,
      STRATA_WRITE_KEY: keys.write,
    })
    expect(r.stderr).toBe('')
    expect(r.stdout).toBe('segment sdk: 3 events sent\nfetch: 1 event sent\n')
    expect(r.code).toBe(0)
    const { rows } = await db.query<{ user_id: string; n: number }>(
      `SELECT user_id, count(*)::int AS n FROM events WHERE project_id = $1 GROUP BY user_id ORDER BY user_id`,
      [project.id],
    )
    expect(rows).toEqual([
      { user_id: 'user-1', n: 2 },
      { user_id: 'user-2', n: 1 },
      { user_id: 'user-3', n: 1 },
    ])
  }, 20_000)

  it('csv-import: strata import loads the good rows and rejects the two bad ones', async () => {
    // A copy, so the reject file is written outside the repository.
    const dir = mkdtempSync(join(tmpdir(), 'strata-example-csv-'))
    tmpDirs.push(dir)
    cpSync(join(repoRoot, 'examples/csv-import'), dir, { recursive: true })
    await db.query(readFileSync(join(dir, 'create-table.sql'), 'utf8'))

    const r = await run([cliEntry, 'import', join(dir, 'spec.json')], { DATABASE_URL: tdb.url })
    expect(r.stderr).toBe('')
    expect(r.stdout).toMatch(/^completed: read 6 = loaded 4 \+ rejected 2 \+ skipped 0 in/m)
    expect(r.code).toBe(2)
    const { rows } = await db.query<{ id: number; email: string }>(
      'SELECT id, email FROM customers ORDER BY id',
    )
    expect(rows).toEqual([
      { id: 1, email: 'ann@example.com' },
      { id: 2, email: 'bob@example.com' },
      { id: 5, email: 'eve@example.com' },
      { id: 6, email: 'fay@example.com' },
    ])
    const rejects = readFileSync(join(dir, 'customers.rejects.csv'), 'utf8')
    expect(rejects).toMatch(/^4,email,STRATA_IMPORT_INVALID_VALUE,/m)
    expect(rejects).toMatch(/^5,signed_up,STRATA_IMPORT_INVALID_VALUE,/m)
  }, 20_000)

  it('library: getOrSet over a query runs the query once', async () => {
    const r = await run([join(repoRoot, 'examples/library/app.ts')], { DATABASE_URL: tdb.url })
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout)).toEqual({ products: 2, again: 2, queries: 1 })
    expect(r.code).toBe(0)
  }, 20_000)
})

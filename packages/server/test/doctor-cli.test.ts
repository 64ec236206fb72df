import { spawnSync } from 'node:child_process'
import { createDatabase, migrate, pgMigrations, type Database } from '@strata/pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'
import { cliEntry, repoRoot, tsNodeArgs } from '../../../test/support/spawn.js'
import { PG_STAT_STATEMENTS_MISSING as STATEMENTS_MISSING } from '../../pg/test/support/components.js'
import { collectDoctorReport, formatDoctorReport } from '../src/cli/commands/doctor.js'

let tdb: TestDatabase
let db: Database

beforeAll(async () => {
  tdb = await createTestDatabase('doctor')
  db = await createDatabase({ url: tdb.url })
  await migrate(db, [pgMigrations])
  await db.query(
    'CREATE TABLE events (id int PRIMARY KEY, account int NOT NULL, kind text NOT NULL)',
  )
  await db.query(
    "INSERT INTO events SELECT g, g % 5000, 'k' || (g % 7) FROM generate_series(1, 200000) g",
  )
  await db.query('CREATE INDEX events_kind_idx ON events (kind)')
  await db.query('CREATE INDEX events_kind_id_idx ON events (kind, id)')
  await db.query('ANALYZE events')
  // Seen by the advisor through the monitor (and pg_stat_statements when preloaded).
  for (const a of [1, 2, 3]) await db.query('SELECT * FROM events WHERE account = $1', [a])
})
afterAll(async () => {
  await db?.close()
  await tdb?.drop()
})

describe('strata doctor', () => {
  it('reports the missing index, duplicate index and a readable summary', async () => {
    const report = await collectDoctorReport(db, 'test database')
    const text = formatDoctorReport(report)
    expect(report.problems.join('\n')).toMatch(/missing index on events \(account\)/)
    expect(report.problems.join('\n')).toMatch(/duplicate index events_kind_idx/)
    expect(text).toContain(
      'CREATE INDEX CONCURRENTLY events_account_idx ON public.events (account);',
    )
    expect(text).toContain('DROP INDEX CONCURRENTLY public.events_kind_idx;')
    for (const title of ['Summary', 'Index suggestions', 'Locks', 'Sessions of this application'])
      expect(text).toContain(title)
  })

  it('runs as a CLI command (--json) and validates --limit', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: tdb.url, LOG_LEVEL: 'warn' }
    for (const k of ['VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID']) delete env[k]
    const run = (args: string[]) =>
      spawnSync(process.execPath, [...tsNodeArgs, cliEntry, 'doctor', ...args], {
        cwd: repoRoot,
        env,
        encoding: 'utf8',
        timeout: 60_000,
      })
    const bad = run(['--limit', 'lots'])
    expect(bad.status).toBe(1)
    expect(bad.stderr).toMatch(/--limit must be a whole number/)
    const r = run(['--json', '--limit', '5'])
    expect(r.status, r.stderr).toBe(0)
    const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')))
    expect(json.advice.duplicateIndexes[0].index).toBe('events_kind_idx')
    // The statements section is part of the report, not an "unavailable" placeholder.
    expect(json.statements, STATEMENTS_MISSING).toMatchObject({ available: true })
    expect(json.statements.items.length).toBeGreaterThan(0)
  }, 90_000)
})

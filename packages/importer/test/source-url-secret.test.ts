import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Logger } from '@strata/core'
import {
  createImportJob,
  getImportJob,
  listChildJobs,
  listJobs,
  requestJobAction,
  resumeImport,
  runImportJob,
} from '@strata/importer'
import { redactSourceUrl } from '../src/job-store.js'
import { importerTestEnv, type ImporterTestEnv } from './support/importer-db.js'

const PASSWORD = 'S3cret-pw_for-source'
let env: ImporterTestEnv
beforeAll(async () => {
  env = await importerTestEnv(
    'impsecret',
    `CREATE TABLE legacy (n int PRIMARY KEY);
     INSERT INTO legacy SELECT generate_series(1, 25);
     CREATE TABLE ev (id int);`,
  )
})
afterAll(async () => env?.close())
afterEach(() => vi.restoreAllMocks())

/** The test database's URL with a password (the test server trusts local connections). */
function sourceUrl(database = env.tdb.name): string {
  const u = new URL(env.tdb.url)
  u.username = 'postgres'
  u.password = PASSWORD
  u.pathname = `/${database}`
  return `${u.toString()}?application_name=imp&password=${PASSWORD}`
}

const spec = (url: string) => ({
  source: { format: 'postgres', query: 'SELECT n AS id FROM legacy ORDER BY n', url },
  target: { table: 'ev' },
  columns: { id: { type: 'int' } },
})

/** Every password pg.Client connected with, from here on. */
function connectPasswords(): unknown[] {
  const seen: unknown[] = []
  const connect = pg.Client.prototype.connect
  vi.spyOn(pg.Client.prototype, 'connect').mockImplementation(function (
    this: pg.Client,
    ...args: unknown[]
  ) {
    seen.push((this as unknown as { password: unknown }).password)
    return (connect as (...a: unknown[]) => unknown).apply(this, args)
  } as never)
  return seen
}

async function storedRow(id: string): Promise<{ spec: string; source_url: string | null }> {
  const [row] = await env.rows<{ spec: string; source_url: string | null }>(
    'SELECT spec::text AS spec, source_url FROM data_import_jobs WHERE id = $1',
    [id],
  )
  return row!
}

describe('postgres source URL password', () => {
  it('redacts the password in user info and parameters', () => {
    expect(redactSourceUrl('postgres://u:p%40ss@h:5432/db?sslmode=require&password=zz')).toBe(
      'postgres://u:***@h:5432/db?sslmode=require&password=***',
    )
    expect(redactSourceUrl('postgresql://u:p@ss@h/db')).toBe('postgresql://u:***@h/db')
    expect(redactSourceUrl('postgres://u@h/db')).toBe('postgres://u@h/db')
  })

  it('is stored and shown redacted, kept apart for the runner, and used on resume', async () => {
    await env.db.query('TRUNCATE ev')
    const id = await createImportJob(env.db, spec(sourceUrl()))
    const row = await storedRow(id)
    expect(row.spec).not.toContain(PASSWORD)
    expect(row.spec).toContain('postgres:***@')
    expect(row.source_url).toContain(PASSWORD)

    const shown = JSON.stringify([
      await getImportJob(env.db, id),
      await listJobs(env.db),
      await listChildJobs(env.db, id),
    ])
    expect(shown).not.toContain(PASSWORD)
    expect(shown).not.toContain('source_url')

    // As after a restart: paused, then resumed from the stored (redacted) spec alone.
    await requestJobAction(env.db, id, 'pause')
    const passwords = connectPasswords()
    const r = await resumeImport(env.db, id)
    expect(r.status).toBe('completed')
    expect(r.counts.loaded).toBe(25)
    expect(passwords).toEqual([PASSWORD])
    expect(JSON.stringify(await getImportJob(env.db, id))).not.toContain(PASSWORD)
    // Finished for good: the password is not kept any longer.
    expect((await storedRow(id)).source_url).toBeNull()
  })

  it('keeps the password out of failure reasons and logs, and keeps it for a retry', async () => {
    const logged: unknown[] = []
    const logger = {
      error: (obj: unknown, msg?: string) => logged.push(obj, msg),
      warn: (obj: unknown, msg?: string) => logged.push(obj, msg),
      info: (obj: unknown, msg?: string) => logged.push(obj, msg),
      debug: () => {},
      trace: () => {},
      fatal: () => {},
      child: () => logger,
    } as unknown as Logger
    const id = await createImportJob(env.db, spec(sourceUrl('strata_no_such_database')))
    const r = await runImportJob(env.db, id, { logger })
    expect(r.status).toBe('failed')
    const everything = JSON.stringify([r, await getImportJob(env.db, id), logged], (_k, v) =>
      v instanceof Error ? { message: v.message, stack: v.stack, cause: v.cause } : v,
    )
    expect(everything).not.toContain(PASSWORD)
    expect((await storedRow(id)).source_url).toContain(PASSWORD)
    await requestJobAction(env.db, id, 'cancel')
    expect((await storedRow(id)).source_url).toBeNull()
  })
})

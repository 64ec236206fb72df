// With no DATABASE_URL the service starts an embedded PostgreSQL and connects as the `strata`
// role: it owns the application database and its schema, and is not a superuser (the superuser
// only initialises the cluster and creates extensions and roles). A data dir of an older
// version, where the superuser owns everything, is taken over on start. Slow: a real initdb.
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runReadOnly, sqlState, startEmbeddedPostgres } from '@strata/pg'
import pg from 'pg'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase } from '@strata/pg'
import { createTestDatabase } from '../../../test/support/pg.js'
import { collectDoctorReport } from '../src/cli/commands/doctor.js'
import { loadConfig, type StrataConfig } from '../src/config.js'
import { startService, type RunningService } from '../src/service.js'

const TOKEN = 'embedded-operator-token-0123456789'
let root: string
let config: StrataConfig
let service: RunningService | undefined
let writeKey: string

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'strata-leastpriv-'))
  await chmod(root, 0o755) // as root, postgres runs as the postgres OS user and must traverse it
  config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    STRATA_DATA_DIR: join(root, 'data'),
    STRATA_ADMIN_TOKEN: TOKEN,
  })
  service = await startService(config, pino({ level: 'silent' }))
}, 120_000)

afterAll(async () => {
  await service?.stop()
  await rm(root, { recursive: true, force: true })
})

const q = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) =>
  (await service!.db.query<R>(sql, params)).rows

async function api(path: string, init: { method?: string; body?: unknown; key?: string } = {}) {
  const res = await fetch(`${service!.url}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${init.key ?? TOKEN}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
    ...(init.body ? { body: JSON.stringify(init.body) } : {}),
  })
  return { status: res.status, json: (await res.json()) as Record<string, any> }
}

/**
 * Tables, views, sequences and functions of the public schema the current user does not own
 * (extensions' own objects aside).
 */
async function notOwned(): Promise<string[]> {
  const rows = await q<{ name: string }>(`
    SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
       AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
    UNION ALL
    SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public'
       AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')`)
  return rows.map((r) => r.name)
}

describe('embedded PostgreSQL, service role', () => {
  it('the pool connects as a role that is not a superuser and owns the database and schema', async () => {
    const [me] = await q<Record<string, unknown>>(
      `SELECT current_user AS role, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,
              (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()) AS db_owner
         FROM pg_roles WHERE rolname = current_user`,
    )
    expect(me).toEqual({
      role: 'strata',
      rolsuper: false,
      rolcreaterole: false,
      rolcreatedb: false,
      rolreplication: false,
      rolbypassrls: false,
      db_owner: 'strata',
    })
    expect(await notOwned()).toEqual([])
  })

  it('applied every migration set as that role', async () => {
    const rows = await q<{ set_name: string }>(
      'SELECT DISTINCT set_name FROM strata_migrations ORDER BY 1',
    )
    expect(rows.map((r) => r.set_name)).toEqual(['events', 'importer', 'pg'])
  })

  it('ingests over HTTP: a project, a login, stored', async () => {
    const created = await api('/v1/projects', { method: 'POST', body: { name: 'leastpriv' } })
    expect(created.status).toBe(201)
    writeKey = created.json.keys.write as string
    const login = await api('/v1/logins', {
      method: 'POST',
      key: writeKey,
      body: { messageId: 'lp-1', userId: 'u1', success: true, method: 'password' },
    })
    expect(login.status).toBe(202)
    expect(await q(`SELECT user_id FROM login_events WHERE message_id = 'lp-1'`)).toEqual([
      { user_id: 'u1' },
    ])
  })

  it.each([
    ['CREATE EXTENSION (untrusted)', 'CREATE EXTENSION file_fdw'],
    ['DROP EXTENSION of the superuser', 'DROP EXTENSION pg_stat_statements'],
    ['ALTER SYSTEM', "ALTER SYSTEM SET work_mem = '64MB'"],
    ['COPY … TO PROGRAM', "COPY (SELECT 1) TO PROGRAM 'true'"],
    ['COPY … FROM a server file', "COPY strata_migrations FROM '/etc/passwd'"],
    ['reading a server file', "SELECT pg_read_file('PG_VERSION')"],
    ['CREATE ROLE', 'CREATE ROLE intruder'],
    ['ALTER ROLE … SUPERUSER', 'ALTER ROLE strata SUPERUSER'],
    ['CREATE DATABASE', 'CREATE DATABASE another'],
    ['SET ROLE to the superuser', 'SET ROLE postgres'],
  ])('refuses %s (42501)', async (_what, sql) => {
    const err = await service!.db.query(sql).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(sqlState(err), String(err)).toBe('42501')
  })

  it('the monitor reads every statement and may signal sessions; strata_readonly is assumable', async () => {
    const [roles] = await q<Record<string, boolean>>(
      `SELECT pg_has_role('pg_read_all_stats', 'USAGE') AS read_all_stats,
              pg_has_role('pg_signal_backend', 'USAGE') AS signal_backend,
              pg_has_role('strata_readonly', 'MEMBER') AS readonly_member,
              pg_has_role('strata_readonly', 'USAGE') AS readonly_inherited`,
    )
    expect(roles).toEqual({
      read_all_stats: true,
      signal_backend: true,
      readonly_member: true,
      readonly_inherited: false,
    })
    const top = await service!.db.statements.top({ limit: 5 })
    expect(top.available).toBe(true)
    // Caller SQL runs as strata_readonly.
    expect(await runReadOnly(service!.db, 'SELECT current_user AS u')).toEqual([
      { u: 'strata_readonly' },
    ])
    const plan = await api('/v1/performance/query-plan', {
      method: 'POST',
      body: { sql: 'SELECT count(*) FROM login_events' },
    })
    expect(plan.status).toBe(200)
  })

  it('strata doctor warns about a superuser connection only', async () => {
    const here = await collectDoctorReport(service!.db, 'embedded')
    expect(here.database).toMatchObject({ role: 'strata', superuser: false })
    expect(here.problems.join('\n')).not.toMatch(/superuser/)
    const tdb = await createTestDatabase('leastpriv_doctor') // the test server's superuser
    const su = await createDatabase({ url: tdb.url })
    try {
      const there = await collectDoctorReport(su, 'superuser')
      expect(there.database.superuser).toBe(true)
      expect(there.problems[0]).toMatch(/a superuser/)
    } finally {
      await su.close()
      await tdb.drop()
    }
  })
})

describe('a data dir of an older version (the superuser owns everything)', () => {
  it('is taken over on start: role recreated, ownership moved, data and keys kept', async () => {
    await service!.stop()
    service = undefined
    const dataDir = join(config.dataDir, 'pg')
    // Turn the cluster into what older versions left: no service role, no service password,
    // the database and every object owned by the superuser.
    const cluster = await startEmbeddedPostgres({ dataDir })
    const su = new pg.Client({ connectionString: cluster.superuserUrl })
    await su.connect()
    try {
      await su.query('REASSIGN OWNED BY strata TO postgres')
      await su.query('DROP OWNED BY strata')
      await su.query('ALTER DATABASE strata OWNER TO postgres')
      await su.query('DROP ROLE strata')
      const left = await su.query(
        `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = 'postgres'`,
      )
      expect(left.rows[0].n).toBeGreaterThan(10)
    } finally {
      await su.end()
    }
    await rm(join(dataDir, 'strata-service-password'))
    await cluster.stop()

    service = await startService(config, pino({ level: 'silent' }))
    const [me] = await q<{ role: string; rolsuper: boolean }>(
      'SELECT current_user AS role, rolsuper FROM pg_roles WHERE rolname = current_user',
    )
    expect(me).toEqual({ role: 'strata', rolsuper: false })
    expect(await notOwned()).toEqual([])
    // The old key still works, new rows go into the old tables (and new partitions).
    const login = await api('/v1/logins', {
      method: 'POST',
      key: writeKey,
      body: {
        messageId: 'lp-2',
        userId: 'u2',
        success: true,
        method: 'password',
        timestamp: new Date(Date.now() - 5 * 86_400_000 * 30).toISOString(),
      },
    })
    expect(login.status).toBe(202)
    expect(
      await q(`SELECT message_id FROM login_events WHERE message_id LIKE 'lp-%' ORDER BY 1`),
    ).toEqual([{ message_id: 'lp-1' }, { message_id: 'lp-2' }])
    expect(await notOwned()).toEqual([])
    // A second start is a no-op.
    await service.stop()
    service = await startService(config, pino({ level: 'silent' }))
    expect(await notOwned()).toEqual([])
  })
})

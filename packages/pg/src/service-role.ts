// The least-privilege setup of a cluster Strata owns (the embedded PostgreSQL): the superuser
// initialises it and creates what needs a superuser (extensions, roles, grants of predefined
// roles); the service connects as a login role that owns the application database and its
// schema, and nothing more. Idempotent: every start re-applies it, which also upgrades a data
// directory whose objects an older version created as the superuser.
import type pg from 'pg'
import { silentLogger, type Logger } from '@strata/core'
import { READ_ONLY_ROLE } from './sql-guard/read-only-runner.js'

export interface ServiceRoleOptions {
  /** Login role the service connects as. */
  role: string
  /** Its password (set on every run: the caller's copy is the truth). */
  password: string
  /** Application database, created (owned by `role`) when missing. */
  database: string
  /**
   * Extensions created in the application database when the server has them; a missing one is
   * skipped. @defaultValue ['pg_stat_statements', 'hypopg']
   */
  extensions?: readonly string[]
  /** Role `role` may SET ROLE to for caller-supplied SQL; false: none. @defaultValue 'strata_readonly' */
  readOnlyRole?: string | false
  logger?: Logger
}

export interface ServiceRoleResult {
  /** True when the role did not exist (first start, or a data dir of an older version). */
  createdRole: boolean
  /** Objects whose ownership moved from a superuser to the role (an older data dir). */
  transferred: string[]
  /** Extensions present in the application database afterwards. */
  extensions: string[]
}

/**
 * Predefined roles the service role is granted: the query monitor reads every session's
 * statements (pg_stat_statements, pg_stat_activity) and may cancel or terminate sessions of
 * other non-superuser roles of the application.
 */
export const SERVICE_ROLE_GRANTS = ['pg_read_all_stats', 'pg_signal_backend'] as const

const NAME = /^[a-z_][a-z0-9_]*$/
// pg_advisory_lock key serialising bootstraps of one cluster: 'STRATABS' as a bigint.
const BOOTSTRAP_LOCK_KEY = '6004234345560592979'

const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`
const literal = (value: string): string => `'${value.replace(/'/g, "''")}'`

function checkName(what: string, name: string): void {
  if (!NAME.test(name)) throw new Error(`invalid ${what} name ${JSON.stringify(name)}`)
}

// Objects of the application's schemas (not PostgreSQL's, not an extension's) owned by a
// superuser: what an older version, which ran as the superuser, created.
const SUPERUSER_OWNED = `
  WITH app_ns AS (
    SELECT n.oid, n.nspname, n.nspowner FROM pg_namespace n
     WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
  ), ext AS (
    SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
  ), supers AS (
    SELECT oid FROM pg_roles WHERE rolsuper
  )
  SELECT 'SCHEMA' AS kind, quote_ident(n.nspname) AS name
    FROM app_ns n
   WHERE n.nspowner IN (SELECT oid FROM supers)
     AND (('pg_namespace'::regclass, n.oid) NOT IN (SELECT classid, objid FROM ext))
  UNION ALL
  SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                        WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
         c.oid::regclass::text
    FROM pg_class c JOIN app_ns n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
     AND c.relowner IN (SELECT oid FROM supers)
     AND (('pg_class'::regclass, c.oid) NOT IN (SELECT classid, objid FROM ext))
     -- A sequence of a serial/identity column changes owner with its table.
     AND NOT (c.relkind = 'S' AND EXISTS (
       SELECT 1 FROM pg_depend d
        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
         p.oid::regprocedure::text
    FROM pg_proc p JOIN app_ns n ON n.oid = p.pronamespace
   WHERE p.proowner IN (SELECT oid FROM supers)
     AND (('pg_proc'::regclass, p.oid) NOT IN (SELECT classid, objid FROM ext))
  UNION ALL
  SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype::text
    FROM pg_type t JOIN app_ns n ON n.oid = t.typnamespace
   WHERE t.typowner IN (SELECT oid FROM supers)
     AND (('pg_type'::regclass, t.oid) NOT IN (SELECT classid, objid FROM ext))
     AND (t.typtype IN ('e', 'd', 'r')
          OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
`

/**
 * Sets up (or repairs) the service role of a cluster, connected as a superuser: `connect(db)`
 * returns a connected superuser client on database `db` (closed here). In order:
 *
 * 1. the login role (NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS), its
 *    password, membership of pg_read_all_stats and pg_signal_backend;
 * 2. the application database, owned by the role (so is its `public` schema, PostgreSQL 15+);
 * 3. the read-only role (NOLOGIN, pg_read_all_data, PostgreSQL 14+) the role may SET ROLE to
 *    without inheriting its rights (PostgreSQL 16+);
 * 4. the extensions the server has, in the application database;
 * 5. ownership of every application object a superuser owns moves to the role.
 *
 * Serialised by an advisory lock, so concurrent starts on one cluster are safe.
 */
export async function bootstrapServiceRole(
  connect: (database: string) => Promise<pg.Client>,
  options: ServiceRoleOptions,
): Promise<ServiceRoleResult> {
  const { role, password, database } = options
  const log = options.logger ?? silentLogger
  const readOnly = options.readOnlyRole ?? READ_ONLY_ROLE
  const wanted = options.extensions ?? ['pg_stat_statements', 'hypopg']
  checkName('role', role)
  checkName('database', database)
  if (readOnly) checkName('role', readOnly)
  for (const e of wanted) checkName('extension', e)

  let createdRole = false
  const admin = await connect('postgres')
  try {
    await admin.query(`SELECT pg_advisory_lock(${BOOTSTRAP_LOCK_KEY})`)
    const version = Number(
      (await admin.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`))
        .rows[0]!.v,
    )
    const attributes = 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS'
    const exists = (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount
    if (!exists) {
      await admin.query(`CREATE ROLE ${ident(role)} ${attributes} PASSWORD ${literal(password)}`)
      createdRole = true
      log.info({ role }, 'database role created')
    } else {
      await admin.query(`ALTER ROLE ${ident(role)} ${attributes} PASSWORD ${literal(password)}`)
    }
    await admin.query(`GRANT ${SERVICE_ROLE_GRANTS.join(', ')} TO ${ident(role)}`)

    const db = await admin.query<{ owner: string }>(
      'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1',
      [database],
    )
    if (!db.rowCount) await admin.query(`CREATE DATABASE ${ident(database)} OWNER ${ident(role)}`)
    else if (db.rows[0]!.owner !== role) {
      await admin.query(`ALTER DATABASE ${ident(database)} OWNER TO ${ident(role)}`)
      log.info({ database, role, from: db.rows[0]!.owner }, 'database ownership moved')
    }

    if (readOnly && version >= 140000) {
      const ro = ident(readOnly)
      if (!(await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [readOnly])).rowCount)
        await admin.query(
          `CREATE ROLE ${ro} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`,
        )
      await admin.query(`GRANT pg_read_all_data TO ${ro}`)
      // The service may switch to it (SET ROLE) but does not read through it otherwise; before
      // 16 a membership always inherits.
      await admin.query(
        version >= 160000
          ? `GRANT ${ro} TO ${ident(role)} WITH INHERIT FALSE, SET TRUE`
          : `GRANT ${ro} TO ${ident(role)}`,
      )
    }
  } finally {
    await admin.end().catch(() => {})
  }

  const app = await connect(database)
  try {
    await app.query('BEGIN')
    await app.query(`SELECT pg_advisory_xact_lock(${BOOTSTRAP_LOCK_KEY})`)
    const available = new Set(
      (
        await app.query<{ name: string }>(
          'SELECT name FROM pg_available_extensions WHERE name = ANY($1::text[])',
          [wanted],
        )
      ).rows.map((r) => r.name),
    )
    for (const e of wanted)
      if (available.has(e)) await app.query(`CREATE EXTENSION IF NOT EXISTS ${ident(e)}`)
    const transferred: string[] = []
    for (const { kind, name } of (await app.query<{ kind: string; name: string }>(SUPERUSER_OWNED))
      .rows) {
      await app.query(`ALTER ${kind} ${name} OWNER TO ${ident(role)}`)
      transferred.push(`${kind.toLowerCase()} ${name}`)
    }
    const extensions = (
      await app.query<{ extname: string }>(
        'SELECT extname FROM pg_extension WHERE extname = ANY($1::text[]) ORDER BY 1',
        [wanted],
      )
    ).rows.map((r) => r.extname)
    await app.query('COMMIT')
    if (transferred.length)
      log.info(
        { role, count: transferred.length },
        'ownership of objects a superuser created moved to the service role',
      )
    return { createdRole, transferred, extensions }
  } catch (err) {
    await app.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    await app.end().catch(() => {})
  }
}

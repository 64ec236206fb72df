// Our own small migration runner instead of node-pg-migrate: node-pg-migrate serialises
// migrators with a SESSION advisory lock held across all files, which is unsafe through
// PgBouncer in transaction mode (the lock stays on whichever server connection ran the lock
// statement, and the unlock may land on another one). Here each file runs in its own
// transaction that takes a TRANSACTION-scoped advisory lock and re-checks the ledger, so it is
// PgBouncer-safe; we also need several packages' migration sets in one ledger and checksums.
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { silentLogger } from '@strata/core'
import type { Logger } from '@strata/core'
import { pgErrors, pgFields } from './errors.js'
import type { Queryable, TransactionalQueryable } from './queryable.js'

/** One package's migrations: files `NNNN_description.sql` in `dir`, applied in numeric order. */
export interface MigrationSet {
  /** Ledger key, e.g. 'events'; versions are per set. */
  name: string
  dir: string | URL
}

export interface MigrateOptions {
  logger?: Logger
  /** Time budget per migration file (server statement_timeout and client read timeout). @defaultValue 3600000 (1 h) */
  timeoutMs?: number
}

export interface AppliedMigration {
  set: string
  version: number
  name: string
  durationMs: number
}

export interface MigrationStatusEntry {
  set: string
  version: number
  name: string
  /** 'pending': file not applied; 'applied': ok; 'changed': applied with another checksum; 'missing': in the ledger, no file. */
  state: 'pending' | 'applied' | 'changed' | 'missing'
  appliedAt?: Date
}

interface MigrationFile {
  set: string
  version: number
  name: string
  file: string
  sql: string
  checksum: string
  transactional: boolean
}

export const MIGRATIONS_TABLE = 'strata_migrations'
// pg_advisory_(xact_)lock key shared by every Strata migrator: 'STRATAMG' as a bigint.
export const MIGRATION_LOCK_KEY = '6004234345560590663'
const NO_TX_MARKER = /^--\s*strata:no-transaction\b/
const FILE_RE = /^(\d+)_([\w.-]+)\.sql$/
const DEFAULT_TIMEOUT_MS = 3_600_000

const LEDGER_DDL = `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
  set_name text NOT NULL,
  version bigint NOT NULL,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  duration_ms integer,
  PRIMARY KEY (set_name, version)
)`

/** What migrate accepts: one set, several, or just a directory (set name 'app'). */
export type MigrationSource = MigrationSet | MigrationSet[] | string | URL

function toArray(sets: MigrationSource): MigrationSet[] {
  if (typeof sets === 'string' || sets instanceof URL) return [{ name: 'app', dir: sets }]
  return Array.isArray(sets) ? sets : [sets]
}

function checksum(sql: string): string {
  // Line endings normalised so a CRLF checkout does not look like an edit.
  return createHash('sha256').update(sql.replace(/\r\n/g, '\n')).digest('hex')
}

async function readSet(set: MigrationSet): Promise<MigrationFile[]> {
  const dir = set.dir instanceof URL ? fileURLToPath(set.dir) : set.dir
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    throw pgErrors.create('STRATA_DB_MIGRATION_FAILED', {
      message: `Cannot read migrations of set "${set.name}" from ${dir}`,
      details: { set: set.name, dir },
      cause: err,
    })
  }
  const files: MigrationFile[] = []
  const seen = new Map<number, string>()
  for (const file of names) {
    const m = FILE_RE.exec(file)
    if (!m) continue
    const version = Number(m[1])
    const other = seen.get(version)
    if (other !== undefined)
      throw pgErrors.create('STRATA_DB_MIGRATION_FAILED', {
        message: `Set "${set.name}" has two migrations with version ${version}: ${other} and ${file}`,
        details: { set: set.name, version, files: [other, file] },
      })
    seen.set(version, file)
    const sql = await readFile(join(dir, file), 'utf8')
    files.push({
      set: set.name,
      version,
      name: m[2]!,
      file,
      sql,
      checksum: checksum(sql),
      transactional: !NO_TX_MARKER.test(sql.trimStart()),
    })
  }
  return files.sort((a, b) => a.version - b.version)
}

async function ledger(
  db: Queryable,
  set: string,
): Promise<Map<number, { checksum: string; name: string; applied_at: Date }>> {
  const { rows } = await db.query<{
    version: string
    checksum: string
    name: string
    applied_at: Date
  }>(
    `SELECT version, checksum, name, applied_at FROM ${MIGRATIONS_TABLE} WHERE set_name = $1`,
    [set],
    { label: 'migrate' },
  )
  return new Map(rows.map((r) => [Number(r.version), r]))
}

function mismatch(f: MigrationFile, applied: string): never {
  throw pgErrors.create('STRATA_DB_MIGRATION_CHECKSUM_MISMATCH', {
    message: `Migration ${f.set}/${f.file} was changed after it was applied (checksum ${applied.slice(0, 12)}… in the database, ${f.checksum.slice(0, 12)}… on disk); add a new migration instead`,
    details: { set: f.set, version: f.version, file: f.file, applied, current: f.checksum },
  })
}

function failed(f: MigrationFile, err: unknown): Error {
  if (pgErrors.is(err, 'STRATA_DB_MIGRATION_CHECKSUM_MISMATCH')) return err
  const cause = (err as { cause?: unknown })?.cause ?? err
  return pgErrors.create('STRATA_DB_MIGRATION_FAILED', {
    message: `Migration ${f.set}/${f.file} failed: ${err instanceof Error ? err.message : String(err)}`,
    details: { set: f.set, version: f.version, file: f.file, ...pgFields(cause) },
    cause: err,
  })
}

/**
 * Applies pending migrations of each set, in order, and returns what this call applied.
 * Safe to run from several instances at once: each file runs in its own transaction that takes
 * `pg_advisory_xact_lock` and re-checks the ledger, so every migration is applied exactly once.
 * A file whose first line is `-- strata:no-transaction` (e.g. CREATE INDEX CONCURRENTLY) runs
 * outside a transaction, statement by statement (split at `;` ending a line), under a SESSION
 * advisory lock; through PgBouncer in transaction mode run such files over a direct connection.
 */
export async function migrate(
  db: TransactionalQueryable,
  sets: MigrationSource,
  options: MigrateOptions = {},
): Promise<AppliedMigration[]> {
  const log = options.logger ?? silentLogger
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const all = toArray(sets)
  const filesBySet = await Promise.all(all.map(readSet))
  // Concurrent CREATE TABLE IF NOT EXISTS can race on the catalog; serialise it with the lock.
  await db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`, [], { label: 'migrate' })
    await tx.query(LEDGER_DDL, [], { label: 'migrate' })
  })

  const applied: AppliedMigration[] = []
  for (const files of filesBySet) {
    if (files.length === 0) continue
    const known = await ledger(db, files[0]!.set)
    for (const f of files) {
      const done = known.get(f.version)
      if (done) {
        if (done.checksum !== f.checksum) mismatch(f, done.checksum)
        continue
      }
      const t0 = performance.now()
      let ran: boolean
      try {
        ran = f.transactional
          ? await applyInTransaction(db, f, timeoutMs)
          : await applyOutside(db, f, timeoutMs)
      } catch (err) {
        throw failed(f, err)
      }
      if (ran) {
        const durationMs = Math.round(performance.now() - t0)
        applied.push({ set: f.set, version: f.version, name: f.name, durationMs })
        log.info({ set: f.set, version: f.version, name: f.name, durationMs }, 'migration applied')
      }
    }
  }
  return applied
}

const RECHECK = `SELECT checksum FROM ${MIGRATIONS_TABLE} WHERE set_name = $1 AND version = $2`
const RECORD = `INSERT INTO ${MIGRATIONS_TABLE} (set_name, version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4, $5)`

/** Returns false when another migrator applied it while we waited for the lock. */
async function applyInTransaction(
  db: TransactionalQueryable,
  f: MigrationFile,
  timeoutMs: number,
): Promise<boolean> {
  return db.transaction(
    async (tx) => {
      const opts = { label: 'migrate', timeoutMs: timeoutMs + 5_000 }
      await tx.query(`SET LOCAL statement_timeout = ${timeoutMs}`, [], opts)
      await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`, [], opts)
      const { rows } = await tx.query<{ checksum: string }>(RECHECK, [f.set, f.version], opts)
      if (rows[0]) {
        if (rows[0].checksum !== f.checksum) mismatch(f, rows[0].checksum)
        return false
      }
      const t0 = performance.now()
      // No parameters: simple query protocol, so a file may hold several statements.
      await tx.query(f.sql, undefined, opts)
      await tx.query(
        RECORD,
        [f.set, f.version, f.name, f.checksum, Math.round(performance.now() - t0)],
        opts,
      )
      return true
    },
    { label: 'migrate', maxRetries: 0 },
  )
}

/** Splits a no-transaction file into statements: at `;` that ends a line (no $$ bodies there). */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;[ \t]*(?:--[^\n]*)?\r?\n/)
    .map((s) =>
      s
        .replace(/^(\s*--[^\n]*\n)+/g, '')
        .trim()
        .replace(/;$/, ''),
    )
    .filter((s) => s.length > 0 && !/^(--[^\n]*\s*)+$/.test(s))
}

async function applyOutside(
  db: TransactionalQueryable,
  f: MigrationFile,
  timeoutMs: number,
): Promise<boolean> {
  return db.withClient(
    async (client) => {
      const q = (text: string, values?: unknown[]) =>
        client.query({ text, values, query_timeout: timeoutMs + 5_000 } as never)
      await q(`SET statement_timeout = ${timeoutMs}`)
      // Session-level lock: released in finally; the client is destroyed if anything failed, so a
      // lock can never stay behind on a pooled connection.
      await q(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`)
      try {
        const { rows } = (await q(RECHECK, [f.set, f.version])) as unknown as {
          rows: { checksum: string }[]
        }
        if (rows[0]) {
          if (rows[0].checksum !== f.checksum) mismatch(f, rows[0].checksum)
          return false
        }
        const t0 = performance.now()
        for (const statement of splitStatements(f.sql)) await q(statement)
        await q(RECORD, [f.set, f.version, f.name, f.checksum, Math.round(performance.now() - t0)])
        return true
      } finally {
        await q(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`)
        await q('RESET statement_timeout')
      }
    },
    { label: 'migrate' },
  )
}

/** Compares the files of each set with the ledger, without applying anything. */
export async function migrationStatus(
  db: TransactionalQueryable,
  sets: MigrationSource,
): Promise<MigrationStatusEntry[]> {
  const { rows } = await db.query<{ exists: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AS exists`,
    [MIGRATIONS_TABLE],
    { label: 'migrate' },
  )
  const hasLedger = rows[0]?.exists === true
  const out: MigrationStatusEntry[] = []
  for (const set of toArray(sets)) {
    const files = await readSet(set)
    const known = hasLedger ? await ledger(db, set.name) : new Map()
    for (const f of files) {
      const done = known.get(f.version)
      known.delete(f.version)
      out.push({
        set: f.set,
        version: f.version,
        name: f.name,
        state: !done ? 'pending' : done.checksum === f.checksum ? 'applied' : 'changed',
        ...(done ? { appliedAt: done.applied_at } : {}),
      })
    }
    for (const [version, row] of known)
      out.push({
        set: set.name,
        version,
        name: row.name,
        state: 'missing',
        appliedAt: row.applied_at,
      })
  }
  return out
}

// Import benchmark: a seeded legacy-users CSV (id, email, name, role, status, created_at, JSON
// metadata, org code resolved through a 10 k-row parent table) and a 0.5 %-bad copy, loaded by
// `psql \copy` (indexed table and index-free table: the ceilings), pgloader when installed, and
// Strata (validation + FK lookup on). Strata runs in a child process so its peak RSS is its own.
//   npm run bench -- import [--rows 1000000] [--quick] [--skip-dirty]
import { seededRandom } from '@strata/core'
import { fork, spawnSync } from 'node:child_process'
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { createBenchDatabase } from './bench-database.js'
import type { BenchArgs, BenchMetric, BenchResult } from './types.js'

const ORGS = 10_000
const BAD_SHARE = 0.005

const ROLES = ['admin', 'user', 'viewer', 'editor']
const STATUSES = ['active', 'suspended', 'invited']
const FIRST = ['Ann', 'Bob', 'Chloé', 'Dmitri', 'Eve', 'Fatima', 'Gus', 'Hiro', 'Ines', 'José']
const LAST = ['Smith', 'Müller', 'Nguyen', 'O"Brien', 'Kowalski', 'García', 'Lee', 'Okafor']

type BadKind = 'email' | 'date' | 'org' | 'columns' | 'duplicate'
const BAD_KINDS: BadKind[] = ['email', 'date', 'org', 'columns', 'duplicate']

interface Generated {
  clean: string
  dirty: string
  rows: number
  bad: Record<BadKind, number>
  /** Source lines (header = 1) of the bad rows of the dirty file. */
  badLines: Set<number>
}

const q = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s)

export async function generate(dir: string, rows: number): Promise<Generated> {
  const rnd = seededRandom(42)
  const clean = createWriteStream(join(dir, 'users.csv'))
  const dirty = createWriteStream(join(dir, 'users-dirty.csv'))
  const header = 'id,email,name,role,status,created_at,metadata,org_code\n'
  clean.write(header)
  dirty.write(header)
  const bad: Record<BadKind, number> = { email: 0, date: 0, org: 0, columns: 0, duplicate: 0 }
  const badLines = new Set<number>()
  let bufC = ''
  let bufD = ''
  const base = Date.UTC(2015, 0, 1)
  for (let i = 1; i <= rows; i++) {
    const name = `${FIRST[Math.floor(rnd() * FIRST.length)]} ${LAST[Math.floor(rnd() * LAST.length)]}`
    const created = new Date(base + Math.floor(rnd() * 3e11)).toISOString()
    const meta = JSON.stringify({
      plan: rnd() < 0.3 ? 'pro' : 'free',
      logins: Math.floor(rnd() * 500),
      tags: ['a', 'b'].slice(0, Math.floor(rnd() * 3)),
    })
    const fields = [
      String(i),
      `user${i}@example.com`,
      name,
      ROLES[Math.floor(rnd() * ROLES.length)]!,
      STATUSES[Math.floor(rnd() * STATUSES.length)]!,
      created,
      meta,
      `ORG${1 + Math.floor(rnd() * ORGS)}`,
    ]
    const line = fields.map(q).join(',') + '\n'
    bufC += line
    if (i > 10 && rnd() < BAD_SHARE) {
      let kind = BAD_KINDS[Math.floor(rnd() * BAD_KINDS.length)]!
      // A duplicate of a row that is itself bad would load: duplicate a good one only.
      if (kind === 'duplicate' && badLines.has(i - 5 + 1)) kind = 'email'
      const f = fields.slice()
      if (kind === 'email') f[1] = `user${i}.example.com`
      else if (kind === 'date') f[5] = '2021-02-30T10:00:00Z'
      else if (kind === 'org') f[7] = 'ORG-UNKNOWN'
      else if (kind === 'columns') f.pop()
      else f[0] = String(i - 5) // duplicate primary key of an earlier (good) row
      bad[kind]++
      badLines.add(i + 1)
      bufD += f.map(q).join(',') + '\n'
    } else bufD += line
    if (bufC.length > 1 << 20) {
      if (!clean.write(bufC)) await once(clean, 'drain')
      if (!dirty.write(bufD)) await once(dirty, 'drain')
      bufC = ''
      bufD = ''
    }
  }
  clean.end(bufC)
  dirty.end(bufD)
  await Promise.all([once(clean, 'finish'), once(dirty, 'finish')])
  return { clean: join(dir, 'users.csv'), dirty: join(dir, 'users-dirty.csv'), rows, bad, badLines }
}

const TABLES = `
  CREATE TABLE orgs (id serial PRIMARY KEY, code text UNIQUE NOT NULL, name text);
  INSERT INTO orgs (code, name) SELECT 'ORG' || g, 'Org ' || g FROM generate_series(1, ${ORGS}) g;
  -- Strata's target: org code resolved to orgs.id (FK), PK + unique email.
  CREATE TABLE legacy_users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text, role text,
    status text, created_at timestamptz, metadata jsonb, org_id int REFERENCES orgs (id));
  -- \\copy ceiling with the same constraints (the code itself is the FK: no lookup possible in COPY).
  CREATE TABLE copy_users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text, role text,
    status text, created_at timestamptz, metadata jsonb, org_code text REFERENCES orgs (code));
  CREATE UNLOGGED TABLE copy_plain (id bigint, email text, name text, role text, status text,
    created_at timestamptz, metadata jsonb, org_code text);`

function psqlCopy(url: string, table: string, file: string): number {
  const t0 = performance.now()
  const r = spawnSync(
    'psql',
    [
      url,
      '-v',
      'ON_ERROR_STOP=1',
      '-qc',
      `\\copy ${table} FROM '${file}' WITH (FORMAT csv, HEADER true)`,
    ],
    {
      encoding: 'utf8',
    },
  )
  if (r.status !== 0) throw new Error(`psql \\copy failed: ${r.stderr}`)
  return performance.now() - t0
}

function hasPgloader(): boolean {
  return spawnSync('pgloader', ['--version'], { encoding: 'utf8' }).status === 0
}

interface ChildResult {
  status: string
  counts: { read: number; loaded: number; rejected: number; skipped: number }
  elapsedMs: number
  maxRssBytes: number
}

function runStrata(url: string, spec: unknown, options: unknown = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = fork(
      fileURLToPath(new URL('./import-child.js', import.meta.url)),
      [url, JSON.stringify(spec), JSON.stringify(options)],
      {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    )
    child.once('message', (m) => resolve(m as ChildResult))
    child.once('error', reject)
    child.once(
      'exit',
      (code) => code !== 0 && reject(new Error(`import child exited with ${code}`)),
    )
  })
}

export default async function run(args: BenchArgs): Promise<BenchResult> {
  const rows = Number(args.options?.rows ?? (args.quick ? 100_000 : 1_000_000))
  const bdb = await createBenchDatabase('import')
  const url = bdb.url
  const dir = mkdtempSync(join(tmpdir(), 'strata-bench-import-'))
  const db = new pg.Client({ connectionString: url })
  // Other processes on a shared machine may terminate idle backends: report, do not crash.
  db.on('error', (err) => console.error('  bench connection error:', err))
  await db.connect()
  const results: BenchMetric[] = []
  const notes: string[] = []
  try {
    console.log(`  generating ${rows} rows…`)
    const gen = await generate(dir, rows)
    const badTotal = Object.values(gen.bad).reduce((a, b) => a + b, 0)
    await db.query(TABLES)
    // Migrations of the importer (job tables) through the library itself.
    const { createDatabase, migrate } = await import('@strata/pg')
    const { importerMigrations } = await import('@strata/importer')
    const sdb = await createDatabase({ url })
    await migrate(sdb, [importerMigrations])
    await sdb.close()
    const size = statSync(gen.clean).size

    // Each timed load starts from a checkpoint, so none pays for flushing the WAL and dirty
    // buffers of the load before it (the order of the loads otherwise skews their figures).
    const settle = async (): Promise<void> => {
      await db.query('CHECKPOINT')
    }
    const pgloader = async (file: string): Promise<{ rps: number; loaded: number }> => {
      await db.query('TRUNCATE copy_users')
      await settle()
      const t0 = performance.now()
      spawnSync(
        'pgloader',
        [
          '--type',
          'csv',
          '--field',
          'id,email,name,role,status,created_at,metadata,org_code',
          '--with',
          'skip header = 1',
          '--with',
          "fields terminated by ','",
          '--with',
          `fields optionally enclosed by '"'`,
          '--with',
          'fields escaped by double-quote',
          file,
          `${url}?tablename=copy_users`,
        ],
        { stdio: 'ignore' },
      )
      const ms = performance.now() - t0
      const { rows: n } = await db.query<{ n: string }>('SELECT count(*) AS n FROM copy_users')
      return { rps: (rows * 1000) / ms, loaded: Number(n[0]!.n) }
    }
    const spec = (path: string, rejectFile: string) => ({
      source: { format: 'csv', path },
      target: { table: 'legacy_users', mode: 'insert', key: ['id'] },
      columns: {
        id: { from: 'id', type: 'bigint', required: true },
        email: { from: 'email', type: 'email', required: true, transform: 'lower' },
        name: { from: 'name' },
        role: { from: 'role', type: 'enum', values: ROLES },
        status: { from: 'status', type: 'enum', values: STATUSES },
        created_at: { from: 'created_at', type: 'timestamp' },
        metadata: { from: 'metadata', type: 'json' },
        org_id: { from: 'org_code', lookup: { table: 'orgs', column: 'code', returns: 'id' } },
      },
      errors: { maxErrorRate: 0.05, rejectFile },
      batch: { initial: 5000, min: 1000, max: 10000, targetMs: 1000 },
    })
    // Rounds of (\copy indexed, \copy index-free, strata, strata with the parse worker); the
    // best of each is kept, which filters out other load on a shared machine.
    const repeat = Math.max(1, Number(args.options?.repeat ?? 1))
    let copyIndexedRps = 0
    let copyPlainRps = 0
    let cleanRps = 0
    let workerRps = 0
    let clean: ChildResult | undefined
    for (let round = 0; round < repeat; round++) {
      await db.query('TRUNCATE copy_users, copy_plain')
      await settle()
      copyIndexedRps = Math.max(
        copyIndexedRps,
        (rows * 1000) / psqlCopy(url, 'copy_users', gen.clean),
      )
      await settle()
      copyPlainRps = Math.max(copyPlainRps, (rows * 1000) / psqlCopy(url, 'copy_plain', gen.clean))
      await db.query('TRUNCATE legacy_users')
      await settle()
      const c = await runStrata(url, spec(gen.clean, join(dir, 'clean.rejects.csv')))
      if (c.status !== 'completed' || c.counts.loaded !== rows)
        throw new Error(`strata clean load: ${JSON.stringify(c)}`)
      cleanRps = Math.max(cleanRps, (rows * 1000) / c.elapsedMs)
      if (!clean || c.maxRssBytes > clean.maxRssBytes) clean = c
      await db.query('TRUNCATE legacy_users')
      await settle()
      const w = await runStrata(url, spec(gen.clean, join(dir, 'worker.rejects.csv')), {
        parseWorker: true,
      })
      if (w.status !== 'completed' || w.counts.loaded !== rows)
        throw new Error(`strata worker load: ${JSON.stringify(w)}`)
      workerRps = Math.max(workerRps, (rows * 1000) / w.elapsedMs)
      console.log(
        `  round ${round + 1}: \\copy indexed ${copyIndexedRps.toFixed(0)}, index-free ${copyPlainRps.toFixed(0)}, strata ${cleanRps.toFixed(0)}, strata+worker ${workerRps.toFixed(0)} rows/s (best so far); peak RSS ${(c.maxRssBytes / 2 ** 20).toFixed(0)} MiB`,
      )
    }
    clean = clean!

    let pgloaderRps: number | undefined
    if (hasPgloader()) {
      const r = await pgloader(gen.clean)
      pgloaderRps = r.rps
      notes.push(
        `pgloader (clean file, same indexed table): ${r.loaded} of ${rows} rows loaded at ${r.rps.toFixed(0)} rows/s.`,
      )
      if (args.options?.['skip-dirty'] !== true) {
        const d = await pgloader(gen.dirty)
        notes.push(
          `pgloader on the dirty file: ${d.loaded} rows loaded (good rows: ${rows - Object.values(gen.bad).reduce((a, b) => a + b, 0)}), ${d.rps.toFixed(0)} rows/s; it has no lookup, so "unknown org" rows fail on the FK.`,
        )
      }
    } else
      notes.push(
        'pgloader is not installed here: no pgloader figure in this run (apt-get install pgloader to add it).',
      )

    let dirtyRps: number | undefined
    let dirtyOk = false
    if (args.options?.['skip-dirty'] !== true) {
      const rejectFile = join(dir, 'dirty.rejects.csv')
      let dirty!: ChildResult
      dirtyRps = 0
      for (let round = 0; round < repeat; round++) {
        await db.query('TRUNCATE legacy_users')
        await settle()
        dirty = await runStrata(url, spec(gen.dirty, rejectFile))
        dirtyRps = Math.max(dirtyRps, (rows * 1000) / dirty.elapsedMs)
      }
      const rejected = readFileSync(rejectFile, 'utf8').trim().split('\n').slice(1)
      const lines = new Set(rejected.map((l) => Number(l.split(',')[0])))
      const byCode: Record<string, number> = {}
      for (const l of rejected) {
        const code = l.split(',')[2]!
        byCode[code] = (byCode[code] ?? 0) + 1
      }
      const { rows: cnt } = await db.query<{ n: string }>('SELECT count(*) AS n FROM legacy_users')
      const loaded = Number(cnt[0]!.n)
      dirtyOk =
        loaded === rows - badTotal &&
        lines.size === badTotal &&
        [...gen.badLines].every((l) => lines.has(l)) &&
        dirty.counts.rejected === badTotal
      notes.push(
        `dirty file: ${badTotal} bad rows (${JSON.stringify(gen.bad)}); Strata loaded ${loaded} of ${rows - badTotal} good rows and rejected ${dirty.counts.rejected} (${JSON.stringify(byCode)}); every bad line in the reject file and no good one: ${dirtyOk}`,
      )
      console.log(`  strata dirty ${dirtyRps.toFixed(0)} rows/s, exact: ${dirtyOk}`)
    }

    results.push(
      {
        metric: 'psql \\copy, indexed table (PK, unique email, FK on org code)',
        value: copyIndexedRps,
        unit: 'rows/s',
      },
      { metric: 'psql \\copy, index-free unlogged table', value: copyPlainRps, unit: 'rows/s' },
      {
        metric: 'strata import, clean file (validation + FK lookup, PK + unique + FK)',
        value: cleanRps,
        unit: 'rows/s',
        baseline: 'psql \\copy into the indexed table',
        baselineValue: copyIndexedRps,
        ratio: cleanRps / copyIndexedRps,
        goal: '>= 0.8x \\copy (indexed)',
        pass: cleanRps / copyIndexedRps >= 0.8,
      },
      {
        metric: 'strata import vs index-free \\copy',
        value: cleanRps,
        unit: 'rows/s',
        baseline: 'psql \\copy into an index-free table',
        baselineValue: copyPlainRps,
        ratio: cleanRps / copyPlainRps,
      },
    )
    results.push({
      metric: 'strata import, clean file, parse/convert in a piscina worker thread',
      value: workerRps,
      unit: 'rows/s',
      baseline: 'strata, parsing in the main thread',
      baselineValue: cleanRps,
      ratio: workerRps / cleanRps,
    })
    if (pgloaderRps !== undefined)
      results.push({
        metric: 'strata import vs pgloader',
        value: cleanRps,
        unit: 'rows/s',
        baseline: 'pgloader (same file, indexed table)',
        baselineValue: pgloaderRps,
        ratio: cleanRps / pgloaderRps,
        goal: '>= 3x pgloader',
        pass: cleanRps / pgloaderRps >= 3,
      })
    if (dirtyRps !== undefined)
      results.push({
        metric: 'strata import, 0.5 %-bad file (every good row loaded, every bad row rejected)',
        value: dirtyRps,
        unit: 'rows/s',
        baseline: 'strata, clean file',
        baselineValue: cleanRps,
        ratio: dirtyRps / cleanRps,
        goal: '>= 0.7x clean, exact rejects',
        pass: dirtyRps / cleanRps >= 0.7 && dirtyOk,
      })
    results.push({
      metric: 'strata import peak RSS (child process, clean file)',
      value: clean.maxRssBytes / 2 ** 20,
      unit: 'MiB',
      goal: '< 256 MiB',
      pass: clean.maxRssBytes < 256 * 2 ** 20,
    })
    return {
      name: 'import',
      params: { rows, fileBytes: size, badShare: BAD_SHARE, orgs: ORGS },
      results,
      notes,
    }
  } finally {
    await db.end()
    await bdb.drop()
    rmSync(dir, { recursive: true, force: true })
  }
}

import { parseArgs } from 'node:util'
import type {
  Database,
  IndexAdvice,
  LockContention,
  LongRunningReport,
  Regression,
  TopStatements,
} from '@strata/pg'
import { connectedRole, superuserWarning } from '../../service.js'
import type { Command } from '../command.js'
import { withCliDatabase } from '../with-database.js'

export interface DoctorReport {
  database: {
    description: string
    version: string
    hypopg: boolean
    /** The role the service's sessions run as; a superuser is reported as a problem. */
    role: string
    superuser: boolean
  }
  statements: TopStatements
  regressions: Regression[] | { unavailable: string }
  advice: IndexAdvice
  sessions: LongRunningReport
  locks: LockContention
  /** Findings in words, worst first. */
  problems: string[]
}

/** Gathers what `strata doctor` prints (also used by its test). */
export async function collectDoctorReport(
  db: Database,
  description: string,
  options: { limit?: number } = {},
): Promise<DoctorReport> {
  const limit = options.limit ?? 10
  const { rows } = await db.query<{ v: string }>(`SELECT version() AS v`, [], {
    label: 'strata:doctor',
  })
  const statements = await db.statements.top({ orderBy: 'total', limit })
  let regressions: DoctorReport['regressions']
  try {
    regressions = statements.available
      ? await db.statements.regressions()
      : { unavailable: statements.message }
  } catch (err) {
    regressions = {
      unavailable: `no statement history yet (${(err as Error).message}); run strata migrate and start the service`,
    }
  }
  const advice = await db.advisor.indexSuggestions()
  const sessions = await db.health.longRunning()
  const locks = await db.locks.contention()
  const { role, superuser } = await connectedRole(db)
  const problems: string[] = []
  if (superuser) problems.push(superuserWarning(role))
  if (!statements.available) problems.push(`pg_stat_statements: ${statements.message}`)
  for (const s of advice.suggestions)
    problems.push(
      `missing index on ${s.table} (${s.columns.join(', ')}): ${s.improvement ? `${s.improvement}× cheaper` : 'unverified'} for ${s.queries.length} statement(s)`,
    )
  if (Array.isArray(regressions))
    for (const r of regressions)
      problems.push(`regression: ${short(r.query, 60)} is ${r.factor}× slower than its baseline`)
  for (const d of advice.duplicateIndexes)
    problems.push(`duplicate index ${d.index} (covered by ${d.coveredBy})`)
  for (const t of advice.lowIndexUsageTables)
    problems.push(`${t.table}: only ${pct(t.indexUsage)} of scans use an index`)
  if (locks.pairs.length) problems.push(`${locks.blockedSessions} session(s) blocked on locks`)
  if (sessions.idleInTransaction.length)
    problems.push(`${sessions.idleInTransaction.length} session(s) idle in transaction`)
  if (sessions.active.length) problems.push(`${sessions.active.length} long-running query(ies)`)
  return {
    database: {
      description,
      version: rows[0]?.v.split(' on ')[0] ?? 'unknown',
      hypopg: advice.method === 'hypopg',
      role,
      superuser,
    },
    statements,
    regressions,
    advice,
    sessions,
    locks,
    problems,
  }
}

function short(s: string, n: number): string {
  const one = s.replace(/\s+/g, ' ').trim()
  return one.length > n ? `${one.slice(0, n - 1)}…` : one
}

function pct(v: number | null): string {
  return v === null ? '-' : `${Math.round(v * 1000) / 10} %`
}

function num(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : String(Math.round(n * 100) / 100)
}

function table(headers: string[], rows: string[][]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) =>
    `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd()
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)]
}

/** Human-readable report for a terminal. */
export function formatDoctorReport(r: DoctorReport, width = 100): string {
  const out: string[] = []
  const section = (title: string) => out.push('', title, '='.repeat(title.length))
  out.push(
    `strata doctor — ${r.database.description}`,
    `${r.database.version}, role ${r.database.role}${r.database.superuser ? ' (superuser)' : ''}`,
  )

  section('Summary')
  if (r.problems.length === 0) out.push('  No problems found.')
  else for (const p of r.problems) out.push(`  ! ${p}`)

  section('Top statements by total time (pg_stat_statements)')
  if (!r.statements.available)
    out.push(`  unavailable: ${r.statements.message}`, `  hint: ${r.statements.hint}`)
  else if (r.statements.items.length === 0) out.push('  none recorded yet')
  else
    out.push(
      ...table(
        ['total ms', 'calls', 'mean ms', 'rows', 'cache hit', 'statement'],
        r.statements.items.map((s) => [
          num(s.totalMs),
          num(s.calls),
          num(s.meanMs),
          num(s.rows),
          pct(s.cacheHitRatio),
          short(s.query, Math.max(30, width - 60)),
        ]),
      ),
    )

  section('Regressions (last hour vs the days before)')
  if (!Array.isArray(r.regressions)) out.push(`  ${r.regressions.unavailable}`)
  else if (r.regressions.length === 0) out.push('  none')
  else
    for (const g of r.regressions)
      out.push(
        `  ${g.factor}× slower: ${num(g.recentMeanMs)} ms vs ${num(g.baselineMeanMs)} ms — ${short(g.query, width - 40)}`,
      )

  section(
    `Index suggestions (${r.advice.method === 'hypopg' ? 'verified with hypopg' : 'heuristic'})`,
  )
  if (r.advice.notice) out.push(`  note: ${r.advice.notice}`)
  if (r.advice.suggestions.length === 0) out.push('  none')
  for (const s of r.advice.suggestions) {
    out.push(
      `  ${s.create};`,
      `    cost ${num(s.costBefore)} → ${s.costAfter === null ? '?' : num(s.costAfter)}${s.improvement ? ` (${s.improvement}×)` : ''}; helps:`,
      ...s.queries.slice(0, 3).map((q) => `      ${short(q, width - 8)}`),
    )
  }
  if (r.advice.duplicateIndexes.length) {
    out.push('', '  Duplicate indexes:')
    for (const d of r.advice.duplicateIndexes)
      out.push(`    ${d.drop};  -- covered by ${d.coveredBy}`)
  }
  if (r.advice.unusedIndexes.length) {
    out.push('', '  Unused indexes (no scans since statistics were reset):')
    for (const u of r.advice.unusedIndexes.slice(0, 10))
      out.push(`    ${u.schema}.${u.index} on ${u.table} (${num(u.bytes / 1024)} kB)`)
  }
  if (r.advice.lowIndexUsageTables.length) {
    out.push('', '  Tables mostly read by sequential scans (< 95 % index scans):')
    for (const t of r.advice.lowIndexUsageTables)
      out.push(
        `    ${t.schema}.${t.table}: ${pct(t.indexUsage)} of ${num(t.seqScans + t.indexScans)} scans, ~${num(t.rows)} rows`,
      )
  }

  section(`Sessions of this application (over ${r.sessions.thresholdMs} ms)`)
  const sessions = [...r.sessions.active, ...r.sessions.idleInTransaction]
  if (sessions.length === 0) out.push('  none')
  for (const s of sessions)
    out.push(`  pid ${s.pid}  ${s.state}  ${num(s.durationMs)} ms  ${short(s.query, width - 40)}`)

  section('Locks')
  out.push(`  deadlocks: ${r.locks.deadlocks.total} since the server's statistics reset`)
  if (r.locks.pairs.length === 0) out.push('  no blocked sessions')
  for (const p of r.locks.pairs)
    out.push(
      `  pid ${p.blocked.pid} waits ${num(p.blocked.waitMs)} ms on pid ${p.blocking.pid} (${p.blocking.state}): ${short(p.blocked.query, width - 50)}`,
    )
  return `${out.join('\n')}\n`
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'check the database: slow statements, index suggestions, sessions, locks',
  usage: `strata doctor [--json] [--limit N]

Connects to DATABASE_URL (or the embedded PostgreSQL) and prints the top statements
(pg_stat_statements), regressions against the stored baseline, index suggestions (verified with
hypopg when installed), duplicate/unused indexes, long-running and idle-in-transaction sessions
of this application, and lock contention. Read-only: nothing is created, cancelled or dropped
(except CREATE EXTENSION pg_stat_statements/hypopg when allowed).
--json     print the report as JSON
--limit N  statements to list (default 10)`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { json: { type: 'boolean', default: false }, limit: { type: 'string' } },
    })
    const limit = values.limit === undefined ? 10 : Number(values.limit)
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      process.stderr.write(`strata doctor: --limit must be a whole number from 1 to 1000\n`)
      return 1
    }
    return withCliDatabase(async ({ database }) => {
      const report = await collectDoctorReport(database.db, database.description, { limit })
      process.stdout.write(
        values.json
          ? `${JSON.stringify(report, null, 2)}\n`
          : formatDoctorReport(report, process.stdout.columns ?? 100),
      )
      return 0
    })
  },
}

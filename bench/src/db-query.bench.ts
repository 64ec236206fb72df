// Instrumented `db.query` vs a raw `pg` Pool on `SELECT 1`: client CPU per query
// (process.cpuUsage, user + system) over sequential and concurrent loops. Both pools get the same
// connection settings (statement_timeout / query_timeout), so the difference is the
// instrumentation (SQL classification cache, histogram, acquire-wait tracking). Rounds alternate
// raw / instrumented and the median per-query figure of each is reported, to damp noise from
// other processes on a shared machine: many short paired rounds, and the median of the per-round
// ratios (each ratio compares two back-to-back runs, so slow drift cancels out).
import { createRequire } from 'node:module'
import os from 'node:os'
import pg from 'pg'
import { createDatabase } from '@strata/pg'
import type { BenchArgs, BenchMetric, BenchResult } from './types.js'

const SQL = 'SELECT 1'

type Runner = (sql: string) => Promise<unknown>

async function measure(
  run: Runner,
  queries: number,
  concurrency: number,
): Promise<{ cpuUs: number; wallUs: number }> {
  const per = Math.floor(queries / concurrency)
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = 0; i < per; i++) await run(SQL)
    }),
  )
  const c = process.cpuUsage(c0)
  const wall = performance.now() - t0
  const n = per * concurrency
  return { cpuUs: (c.user + c.system) / n, wallUs: (wall * 1000) / n }
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export default async function run(args: BenchArgs = {}): Promise<BenchResult> {
  const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
  const quick = args.quick ?? false
  const queries = Number(args.options?.queries ?? (quick ? 1000 : 2000))
  const rounds = Number(args.options?.rounds ?? (quick ? 15 : 61))
  const concurrency = Number(args.options?.concurrency ?? 8)
  const max = 10
  const statementTimeoutMs = 30_000
  const queryTimeoutMs = 35_000

  const db = await createDatabase({ url, pool: { max, statementTimeoutMs, queryTimeoutMs } })
  const raw = new pg.Pool({
    connectionString: url,
    max,
    application_name: 'strata_bench_raw',
    statement_timeout: statementTimeoutMs,
    idle_in_transaction_session_timeout: 60_000,
    query_timeout: queryTimeoutMs,
    connectionTimeoutMillis: 5000,
  })
  raw.on('error', () => {})
  const runRaw: Runner = (sql) => raw.query(sql)
  const runDb: Runner = (sql) => db.query(sql, undefined, { label: 'bench' })

  const results: BenchMetric[] = []
  try {
    for (const [mode, conc] of [
      ['sequential', 1],
      ['concurrent', concurrency],
    ] as const) {
      // Warm-up: open connections, JIT both paths.
      await measure(runRaw, 2000, conc)
      await measure(runDb, 2000, conc)
      const rawCpu: number[] = []
      const dbCpu: number[] = []
      const rawWall: number[] = []
      const dbWall: number[] = []
      for (let r = 0; r < rounds; r++) {
        // Alternate the order so drift (other load, GC) hits both sides alike.
        const order = r % 2 === 0 ? ([runRaw, runDb] as const) : ([runDb, runRaw] as const)
        for (const fn of order) {
          const m = await measure(fn, queries, conc)
          ;(fn === runRaw ? rawCpu : dbCpu).push(m.cpuUs)
          ;(fn === runRaw ? rawWall : dbWall).push(m.wallUs)
        }
      }
      const rc = median(rawCpu)
      const dc = median(dbCpu)
      const ratios = dbCpu.map((d, i) => d / rawCpu[i]!)
      results.push(
        {
          metric: `${mode}_client_cpu_per_query`,
          value: round(dc),
          unit: 'µs',
          baseline: 'raw pg Pool.query',
          baselineValue: round(rc),
          ratio: round(dc / rc, 4),
        },
        {
          metric: `${mode}_cpu_ratio_median_of_rounds`,
          value: round(median(ratios), 4),
          unit: 'ratio',
          baseline: 'raw pg Pool.query',
        },
        {
          metric: `${mode}_cpu_ratio_p25_of_rounds`,
          value: round(quantile(ratios, 0.25), 4),
          unit: 'ratio',
          baseline: 'raw pg Pool.query',
        },
        {
          metric: `${mode}_cpu_ratio_p75_of_rounds`,
          value: round(quantile(ratios, 0.75), 4),
          unit: 'ratio',
          baseline: 'raw pg Pool.query',
        },
        {
          metric: `${mode}_wall_per_query`,
          value: round(median(dbWall)),
          unit: 'µs',
          baseline: 'raw pg Pool.query',
          baselineValue: round(median(rawWall)),
          ratio: round(median(dbWall) / median(rawWall), 4),
        },
      )
    }
  } finally {
    await db.close()
    await raw.end()
  }
  return {
    name: 'db-query',
    params: { sql: SQL, queries, rounds, concurrency, poolMax: max, goal: 'cpu ratio ≤ 1.03' },
    results,
    env: {
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      pg: (createRequire(import.meta.url)('pg/package.json') as { version: string }).version,
    },
  }
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

// Direct run: `node bench/dist/db-query.bench.js [--quick]`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const out = await run({ quick: process.argv.includes('--quick') })
  console.log(JSON.stringify(out, null, 2))
}

// Query monitor overhead: client CPU per `db.query` with the monitor on vs off (both pools are
// otherwise identical @strata/pg pools), over a real server and over a null pg Client (no
// protocol/socket work, so the difference is the monitor alone). Ten statement shapes and
// three labels cycle, so the monitor's per-statement and per-label lookups are exercised.
// Rounds alternate the order; medians of per-round figures are reported (shared machine).
import type pg from 'pg'
import { createDatabase, type Database } from '@strata/pg'
import { median, quantile, round } from './measure.js'
import { nullPgClient } from './null-pg-client.js'
import type { BenchArgs, BenchMetric, BenchResult } from './types.js'

const STATEMENTS = Array.from({ length: 10 }, (_, i) => `SELECT $1::int AS v${i}`)
const LABELS = ['GET /a', 'GET /b', 'POST /c']

const NULL_RESULT = Object.freeze({ command: 'SELECT', rowCount: 1, rows: [{ v: 1 }], fields: [] })

const NullClient = nullPgClient(NULL_RESULT)

async function measure(db: Database, queries: number, concurrency: number): Promise<number> {
  const per = Math.floor(queries / concurrency)
  const c0 = process.cpuUsage()
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = 0; i < per; i++) {
        const k = i + w
        await db.query(STATEMENTS[k % STATEMENTS.length]!, [k], {
          label: LABELS[k % LABELS.length]!,
        })
      }
    }),
  )
  const c = process.cpuUsage(c0)
  return (c.user + c.system) / (per * concurrency)
}

export default async function run(args: BenchArgs = {}): Promise<BenchResult> {
  const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
  const quick = args.quick ?? false
  const queries = Number(args.options?.queries ?? (quick ? 1000 : 2000))
  const rounds = Number(args.options?.rounds ?? (quick ? 11 : 41))
  const concurrency = Number(args.options?.concurrency ?? 8)
  const results: BenchMetric[] = []
  // Slow threshold high enough that no statement is "slow" (no logging in the loop).
  const common = { url, pool: { max: 10 }, connect: true }
  const baseline = '@strata/pg with monitor: false'

  const compare = async (
    scenario: string,
    on: Database,
    off: Database,
    n: number,
    conc: number,
  ) => {
    await measure(on, 2000, conc)
    await measure(off, 2000, conc)
    const onCpu: number[] = []
    const offCpu: number[] = []
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [off, on] : [on, off]
      for (const db of order) (db === on ? onCpu : offCpu).push(await measure(db, n, conc))
    }
    const ratios = onCpu.map((x, i) => x / offCpu[i]!)
    const a = median(onCpu)
    const b = median(offCpu)
    results.push(
      {
        metric: `${scenario}_client_cpu_per_query`,
        value: round(a, 3),
        unit: 'µs',
        baseline,
        baselineValue: round(b, 3),
        ratio: round(a / b, 4),
      },
      {
        metric: `${scenario}_cpu_ratio_median_of_rounds`,
        value: round(median(ratios), 4),
        unit: 'ratio',
        baseline,
      },
      {
        metric: `${scenario}_cpu_ratio_p25_p75_of_rounds`,
        value: round(quantile(ratios, 0.75) - quantile(ratios, 0.25), 4),
        unit: 'ratio spread',
        baseline,
      },
    )
    return { on: a, off: b }
  }

  let realOff = Infinity
  const realOn = await createDatabase({ ...common, monitor: { slowQueryMs: 60_000 } })
  const realOffDb = await createDatabase({ ...common, monitor: false })
  try {
    for (const [mode, conc] of [
      ['sequential', 1],
      ['concurrent', concurrency],
    ] as const) {
      const r = await compare(mode, realOn, realOffDb, queries, conc)
      realOff = Math.min(realOff, r.off)
    }
  } finally {
    await realOn.close()
    await realOffDb.close()
  }

  const Client = NullClient as unknown as typeof pg.Client
  const nullOn = await createDatabase({ ...common, Client, monitor: { slowQueryMs: 60_000 } })
  const nullOff = await createDatabase({ ...common, Client, monitor: false })
  let extra = 0
  try {
    for (const [mode, conc] of [
      ['sequential', 1],
      ['concurrent', concurrency],
    ] as const) {
      const r = await compare(`null_client_${mode}`, nullOn, nullOff, queries * 5, conc)
      results.push({
        metric: `null_client_${mode}_monitor_cpu_per_query`,
        value: round(r.on - r.off, 3),
        unit: 'µs',
        baseline,
        baselineValue: round(r.off, 3),
      })
      extra = Math.max(extra, r.on - r.off)
    }
  } finally {
    await nullOn.close()
    await nullOff.close()
  }
  const estimate = (realOff + extra) / realOff
  results.push({
    metric: 'estimated_cpu_ratio_monitor_on_vs_off',
    value: round(estimate, 4),
    unit: 'ratio',
    baseline: `${baseline} (real server, lower of sequential/concurrent)`,
    baselineValue: round(realOff),
    goal: '<= 1.03',
    pass: estimate <= 1.03,
  })
  return {
    name: 'monitor',
    params: { queries, rounds, concurrency, statements: STATEMENTS.length, labels: LABELS.length },
    results,
    notes: [
      'Client CPU per query = process.cpuUsage (user + system) / queries; monitor on and off alternate per round, medians reported.',
      'The null-client rows isolate the monitor’s own cost (normalized-statement lookup, two log-histogram records, group counters, ring buffer); estimated_cpu_ratio_monitor_on_vs_off adds the worst of them to the real per-query CPU without the monitor.',
    ],
  }
}

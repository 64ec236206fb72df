// Benchmark runner: `npm run bench -- <name|all> [--json file] [--quick]`.
// Imports ./<name>.bench.js, runs it, stamps the environment, writes the JSON (default
// bench/results/<name>.json), prints a table and regenerates docs/benchmarks.md.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchModule, BenchResult } from './types.js'
import { formatNumber, resultsDir, updateDoc } from './update-doc.js'

const here = dirname(fileURLToPath(import.meta.url))

function available(): string[] {
  return readdirSync(here)
    .filter((f) => f.endsWith('.bench.js'))
    .map((f) => f.slice(0, -'.bench.js'.length))
    .sort()
}

function gitSha(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
  } catch {
    return undefined
  }
}

export function environment(): Record<string, unknown> {
  const cpus = os.cpus()
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    totalMemGiB: Math.round(os.totalmem() / 2 ** 30),
    loadavg: os.loadavg().map((n) => Math.round(n * 100) / 100),
    git: gitSha(),
  }
}

function printTable(result: BenchResult): void {
  console.log(`\n${result.name}`)
  console.table(
    result.results.map((r) => ({
      metric: r.metric,
      value: formatNumber(r.value),
      unit: r.unit,
      baseline: r.baseline ?? '',
      'baseline value': formatNumber(r.baselineValue),
      ratio: r.ratio === undefined ? '' : `${formatNumber(r.ratio)}x`,
      goal: r.goal ?? '',
      met: r.pass === undefined ? '' : r.pass ? 'yes' : 'NO',
    })),
  )
  for (const n of result.notes ?? []) console.log(`  note: ${n}`)
}

async function main(argv: string[]): Promise<void> {
  const positional: string[] = []
  const rest: string[] = []
  const options: Record<string, string | boolean> = {}
  let json: string | undefined
  let quick = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--json') json = argv[++i]
    else if (a.startsWith('--json=')) json = a.slice(7)
    else if (a === '--quick') quick = true
    else if (!a.startsWith('-') && positional.length === 0) positional.push(a)
    else {
      rest.push(a)
      const m = /^--([^=]+)(?:=(.*))?$/.exec(a)
      if (!m) continue
      const next = argv[i + 1]
      if (m[2] !== undefined) options[m[1]!] = m[2]
      else if (next !== undefined && !next.startsWith('-')) rest.push((options[m[1]!] = argv[++i]!))
      else options[m[1]!] = true
    }
  }
  const names = available()
  const wanted = positional[0] ?? 'all'
  const selected = wanted === 'all' ? names : [wanted]
  for (const name of selected) {
    if (!names.includes(name)) {
      console.error(`unknown benchmark ${JSON.stringify(name)}; available: ${names.join(', ')}`)
      process.exitCode = 1
      return
    }
  }
  if (json && selected.length > 1) {
    console.error('--json takes one benchmark name, not all')
    process.exitCode = 1
    return
  }
  for (const name of selected) {
    const mod = (await import(`./${name}.bench.js`)) as { default: BenchModule }
    console.log(`running ${name}${quick ? ' (quick)' : ''}…`)
    // Other work on a shared machine skews figures: record the load before and after.
    const loadBefore = os.loadavg().map((n) => Math.round(n * 100) / 100)
    const result = await mod.default({ argv: rest, quick, options })
    result.env = { ...environment(), loadavgBefore: loadBefore, ...result.env, quick }
    const file = json ? resolve(json) : `${resultsDir}${name}.json`
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`)
    printTable(result)
    console.log(`wrote ${file}`)
  }
  console.log(`wrote ${updateDoc()}`)
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})

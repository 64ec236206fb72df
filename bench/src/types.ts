/** What the runner hands every benchmark module. */
export interface BenchArgs {
  /** Arguments after the benchmark name (the runner always passes them). */
  argv?: string[]
  /** Short run (< 60 s for everything) for CI and development. */
  quick?: boolean
  /** `--key value` / `--key=value` / `--flag` arguments, parsed by the runner. */
  options?: Record<string, string | boolean>
}

/** One measured figure, with the baseline it was measured against in the same run. */
export interface BenchMetric {
  metric: string
  value: number
  unit: string
  /** What `value` is compared with (e.g. 'raw ioredis GET+parse, c=64'). */
  baseline?: string
  baselineValue?: number
  /** value / baselineValue, oriented so that > 1 means better when the unit is a rate. */
  ratio?: number
  /** The goal this figure is checked against, in words (e.g. '>= 0.9x raw'). */
  goal?: string
  pass?: boolean
}

export interface BenchResult {
  name: string
  params: Record<string, unknown>
  results: BenchMetric[]
  env?: Record<string, unknown>
  /** Caveats and explanations printed under the table in docs/benchmarks.md. */
  notes?: string[]
}

/** Every `<name>.bench.ts` default-exports one of these. */
export type BenchModule = (args: BenchArgs) => Promise<BenchResult>

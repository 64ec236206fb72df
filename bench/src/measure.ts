// Small measurement helpers shared by benchmarks. Hand-written rather than tinybench because the
// cache scenarios need throughput at a given concurrency (N async workers in flight) and per-call
// latency percentiles from the same harness for every contender; tinybench times sequential
// iterations only.
import { performance } from 'node:perf_hooks'

export interface Rate {
  opsPerSec: number
  ops: number
  ms: number
}

export interface Latency {
  p50: number
  p99: number
  max: number
  mean: number
  count: number
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** The q-quantile (0–1) of unsorted samples, nearest rank below. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[idx]!
}

/** Summarises samples (any unit; returned in the same unit). */
export function summarize(samples: number[] | Float64Array): Latency {
  const sorted = Float64Array.from(samples).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    count: sorted.length,
  }
}

/** Throughput of a synchronous call, run in batches so the clock is read rarely. */
export function rateSync(fn: (i: number) => unknown, ms: number): Rate {
  const batch = 4096
  let ops = 0
  let sink: unknown
  const t0 = performance.now()
  const end = t0 + ms
  let now = t0
  while (now < end) {
    for (let j = 0; j < batch; j++) sink = fn(ops + j)
    ops += batch
    now = performance.now()
  }
  if (sink === Symbol.for('never')) console.log(sink) // keep `sink` observable
  return { opsPerSec: (ops / (now - t0)) * 1000, ops, ms: now - t0 }
}

/**
 * Throughput of an async call with `concurrency` workers each awaiting it in a loop. The clock is
 * checked every 16 calls per worker: a timer would never fire while calls resolve synchronously.
 */
export async function rateAsync(
  fn: (i: number) => Promise<unknown>,
  opts: { ms: number; concurrency?: number },
): Promise<Rate> {
  const concurrency = opts.concurrency ?? 1
  let seq = 0
  const t0 = performance.now()
  const end = t0 + opts.ms
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      // With many calls in flight each call is slow (I/O): check every call, or the window overruns.
      const mask = concurrency > 1 ? 0 : 15
      for (let n = 1; ; n++) {
        await fn(seq++)
        if ((n & mask) === 0 && performance.now() >= end) return
      }
    }),
  )
  const elapsed = performance.now() - t0
  return { opsPerSec: (seq / elapsed) * 1000, ops: seq, ms: elapsed }
}

/** Per-call latency in µs over `samples` calls at `concurrency` (fewer if `maxMs` runs out). */
export async function latencyAsync(
  fn: (i: number) => Promise<unknown>,
  opts: { samples: number; concurrency?: number; maxMs?: number },
): Promise<Latency> {
  const concurrency = opts.concurrency ?? 1
  const out = new Float64Array(opts.samples)
  const end = performance.now() + (opts.maxMs ?? Number.POSITIVE_INFINITY)
  let seq = 0
  let done = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (seq < opts.samples) {
        const i = seq++
        const t = performance.now()
        await fn(i)
        const now = performance.now()
        out[i] = (now - t) * 1000
        done++
        if (now >= end) {
          seq = opts.samples
          return
        }
      }
    }),
  )
  return summarize(out.subarray(0, done))
}

/** Per-call latency in µs of a synchronous call. */
export function latencySync(fn: (i: number) => unknown, samples: number): Latency {
  const out = new Float64Array(samples)
  for (let i = 0; i < samples; i++) {
    const t = performance.now()
    fn(i)
    out[i] = (performance.now() - t) * 1000
  }
  return summarize(out)
}

/**
 * Measures several contenders in interleaved rounds (A B C, A B C, …) and keeps each one's median
 * rate: on a shared, loaded machine the load drifts, and interleaving spreads it evenly instead
 * of penalising whoever runs during a busy spell. An optional first round warms the JIT and is
 * discarded.
 */
export async function interleave(
  rounds: number,
  contenders: Record<string, () => Promise<Rate> | Rate>,
  opts: { warmup?: boolean } = {},
): Promise<Record<string, Rate>> {
  const names = Object.keys(contenders)
  const all: Record<string, Rate[]> = Object.fromEntries(names.map((n) => [n, []]))
  for (let r = opts.warmup ? -1 : 0; r < rounds; r++) {
    for (const n of names) {
      const t0 = performance.now()
      const rate = await contenders[n]!()
      if (process.env.BENCH_DEBUG)
        console.log(
          `    ${n}: ${Math.round(rate.opsPerSec)} ops/s (${Math.round(performance.now() - t0)} ms)`,
        )
      if (r >= 0) all[n]!.push(rate)
    }
  }
  return Object.fromEntries(
    names.map((n) => {
      const sorted = all[n]!.sort((a, b) => a.opsPerSec - b.opsPerSec)
      return [n, sorted[sorted.length >> 1]!]
    }),
  )
}

/** Runs `measure` `rounds` times and keeps the median rate (damps noise on a shared machine). */
export async function medianRate(
  rounds: number,
  measure: () => Promise<Rate> | Rate,
): Promise<Rate> {
  const all: Rate[] = []
  for (let r = 0; r < rounds; r++) all.push(await measure())
  all.sort((a, b) => a.opsPerSec - b.opsPerSec)
  return all[all.length >> 1]!
}

export const round = (x: number, digits = 2): number => {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

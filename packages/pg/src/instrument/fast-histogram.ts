// A Prometheus histogram with a cheaper hot path than prom-client's Histogram. prom-client's
// observe(labels, v) validates the labels and builds a hash string from them on every call, a
// real share of a trivial query's client CPU next to the wrapper's small overhead budget, so
// here each label combination resolves once to a Series that the caller caches (per statement and
// caller label), and observe is a bucket scan plus three increments. The object implements the
// part of prom-client's metric contract a Registry uses (name, help, type, get, reset), so it
// registers into any prom-client Registry and renders exactly like a prom-client Histogram.
import type { Registry } from 'prom-client'

export class Series {
  readonly labels: Readonly<Record<string, string>>
  readonly counts: Float64Array
  readonly #bounds: readonly number[]
  sum = 0
  count = 0

  constructor(labels: Record<string, string>, bounds: readonly number[]) {
    this.labels = Object.freeze(labels)
    this.#bounds = bounds
    this.counts = new Float64Array(bounds.length + 1) // last = +Inf
  }

  /** Records one value (seconds). */
  observe(value: number): void {
    const b = this.#bounds
    let i = 0
    while (i < b.length && value > b[i]!) i++
    this.counts[i]!++
    this.sum += value
    this.count++
  }
}

interface MetricValue {
  value: number
  labels: Record<string, string | number>
  metricName: string
  exemplar?: null
}

export class FastHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly labelNames: readonly string[]
  readonly #bounds: readonly number[]
  readonly #series = new Map<string, Series>()

  constructor(options: {
    name: string
    help: string
    labelNames: readonly string[]
    buckets: readonly number[]
    registers: Registry[]
  }) {
    this.name = options.name
    this.help = options.help
    this.labelNames = options.labelNames
    this.#bounds = [...options.buckets].sort((a, b) => a - b)
    // registerMetric is typed for prom-client's own classes; the Registry only reads the members above.
    for (const r of options.registers) r.registerMetric(this as never)
  }

  /** The series for a label combination (created once; keep the returned object). */
  series(labels: Record<string, string>): Series {
    let key = ''
    for (const n of this.labelNames) key += `${labels[n] ?? ''}\u0000`
    let s = this.#series.get(key)
    if (s === undefined) {
      const full: Record<string, string> = {}
      for (const n of this.labelNames) full[n] = labels[n] ?? ''
      s = new Series(full, this.#bounds)
      this.#series.set(key, s)
    }
    return s
  }

  /** prom-client's metric contract: what Registry.metrics()/getMetricsAsJSON() render. */
  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = []
    const bucket = `${this.name}_bucket`
    for (const s of this.#series.values()) {
      if (s.count === 0) continue
      let acc = 0
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += s.counts[i]!
        values.push({
          value: acc,
          labels: { le: this.#bounds[i]!, ...s.labels },
          metricName: bucket,
          exemplar: null,
        })
      }
      values.push({
        value: s.count,
        labels: { le: '+Inf', ...s.labels },
        metricName: bucket,
        exemplar: null,
      })
      values.push({ value: s.sum, labels: { ...s.labels }, metricName: `${this.name}_sum` })
      values.push({ value: s.count, labels: { ...s.labels }, metricName: `${this.name}_count` })
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    }
  }

  reset(): void {
    for (const s of this.#series.values()) {
      s.counts.fill(0)
      s.sum = 0
      s.count = 0
    }
  }
}

import type { WriterStats } from '@strata/events'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/** The group-commit writer's metrics: flush durations and rows, and its state as gauges. */
export interface IngestMetrics {
  registry: Registry
  /** The writer's onFlush. */
  onFlush(rows: number, ms: number): void
  /** Reports this writer's stats() at every scrape. */
  watch(writer: { stats(): WriterStats }): void
}

export function createIngestMetrics(): IngestMetrics {
  const registry = new Registry()
  const registers = [registry]
  const flushSeconds = new Histogram({
    name: 'strata_ingest_flush_duration_seconds',
    help: 'Group-commit flush transactions, from start to COMMIT (retries included)',
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  })
  const flushRows = new Counter({
    name: 'strata_ingest_flushed_rows_total',
    help: 'Rows handled by committed flushes (inserted, duplicate or rejected)',
    registers,
  })
  return {
    registry,
    onFlush(rows, ms) {
      flushSeconds.observe(ms / 1000)
      flushRows.inc(rows)
    },
    watch(writer) {
      new Gauge({
        name: 'strata_ingest_writer',
        help: 'Group-commit writer state and totals (see the stat label)',
        labelNames: ['stat'],
        registers,
        collect() {
          for (const [stat, value] of Object.entries(writer.stats())) this.set({ stat }, value)
        },
      })
    },
  }
}

import { Gauge } from 'prom-client'
import type { Registry } from 'prom-client'
import { FastHistogram } from './fast-histogram.js'

// Names follow the OpenTelemetry database client semantic conventions, in Prometheus spelling
// (db.client.operation.duration → db_client_operation_duration_seconds, ...).
export const METRIC = Object.freeze({
  operationDuration: 'db_client_operation_duration_seconds',
  connectionCount: 'db_client_connection_count',
  connectionMax: 'db_client_connection_max',
  pendingRequests: 'db_client_connection_pending_requests',
  waitTime: 'db_client_connection_wait_time_seconds',
})

/** Seconds; dense between 0.5 ms and 100 ms where OLTP statements live, up to 10 s. */
export const OPERATION_BUCKETS = [
  0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]
/** Seconds; acquiring a pooled connection is normally µs, a new one ms, saturation longer. */
export const WAIT_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]

/** What a pool exposes to the gauges, read at scrape time (no per-query cost). */
export interface PoolGaugeSource {
  readonly name: string
  readonly max: number
  counts(): { idle: number; used: number; waiting: number }
}

export interface PgMetrics {
  /** Labels: db_operation_name, db_collection_name, label, error_type, pool_name. */
  operationDuration: FastHistogram
  /** Labels: pool_name. */
  waitTime: FastHistogram
  /** Registers a pool with the (shared) gauges; returns the unregister function. */
  addPool(source: PoolGaugeSource): () => void
}

// Several Database instances may share one registry (the server's): metrics are created once per
// registry and the gauges read every registered pool at scrape time.
const perRegistry = new WeakMap<Registry, PgMetrics>()

export function pgMetrics(registry: Registry): PgMetrics {
  const existing = perRegistry.get(registry)
  if (existing) return existing
  const pools = new Set<PoolGaugeSource>()
  const registers = [registry]
  const operationDuration = new FastHistogram({
    name: METRIC.operationDuration,
    help: 'Duration of database client operations (acquire + execute), by operation, table and caller label',
    labelNames: ['db_operation_name', 'db_collection_name', 'label', 'error_type', 'pool_name'],
    buckets: OPERATION_BUCKETS,
    registers,
  })
  const waitTime = new FastHistogram({
    name: METRIC.waitTime,
    help: 'Time spent waiting to obtain a connection from the pool',
    labelNames: ['pool_name'],
    buckets: WAIT_BUCKETS,
    registers,
  })
  new Gauge<'state' | 'pool_name'>({
    name: METRIC.connectionCount,
    help: 'Connections currently in the pool, by state',
    labelNames: ['state', 'pool_name'],
    registers,
    collect() {
      this.reset()
      for (const p of pools) {
        const c = p.counts()
        this.set({ state: 'idle', pool_name: p.name }, c.idle)
        this.set({ state: 'used', pool_name: p.name }, c.used)
      }
    },
  })
  new Gauge<'pool_name'>({
    name: METRIC.pendingRequests,
    help: 'Callers waiting for a connection from the pool',
    labelNames: ['pool_name'],
    registers,
    collect() {
      this.reset()
      for (const p of pools) this.set({ pool_name: p.name }, p.counts().waiting)
    },
  })
  new Gauge<'pool_name'>({
    name: METRIC.connectionMax,
    help: 'Maximum number of connections the pool may open',
    labelNames: ['pool_name'],
    registers,
    collect() {
      this.reset()
      for (const p of pools) this.set({ pool_name: p.name }, p.max)
    },
  })
  const m: PgMetrics = {
    operationDuration,
    waitTime,
    addPool(source) {
      pools.add(source)
      return () => pools.delete(source)
    },
  }
  perRegistry.set(registry, m)
  return m
}

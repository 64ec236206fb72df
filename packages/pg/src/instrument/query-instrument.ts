import { pgErrors } from '../errors.js'
import type { FastHistogram, Series } from './fast-histogram.js'
import type { PgMetrics } from './metrics.js'
import { SqlInfoCache } from './sql-info.js'
import type { SqlInfo } from './sql-info.js'

/** One finished statement, as seen by observers (the query monitor plugs in here). */
export interface QueryObservation {
  readonly sql: string
  readonly info: SqlInfo
  readonly label: string
  readonly durationMs: number
  readonly error?: unknown
  readonly rowCount?: number | null
}

export interface QueryObserver {
  onQuery(observation: QueryObservation): void
}

/** Cached per statement text: parse result plus prom-client label objects per caller label. */
export interface StatementEntry extends SqlInfo {
  readonly sql: string
  /** caller label → histogram series for successful runs (resolved once). */
  readonly byLabel: Map<string, Series>
}

const STATEMENT_CACHE_SIZE = 2000

/**
 * The single place where the query path is measured. Hot path cost: one Map lookup for the
 * statement, one for the label, one histogram observe; the SQL is parsed once per text.
 */
export class QueryInstrument {
  readonly #histogram: FastHistogram
  readonly #poolName: string
  readonly #statements: SqlInfoCache<StatementEntry>
  readonly #observers = new Set<QueryObserver>()

  constructor(metrics: PgMetrics, poolName: string) {
    this.#histogram = metrics.operationDuration
    this.#poolName = poolName
    this.#statements = new SqlInfoCache<StatementEntry>(STATEMENT_CACHE_SIZE, (info, sql) => ({
      ...info,
      sql,
      byLabel: new Map(),
    }))
  }

  statement(sql: string): StatementEntry {
    if (typeof sql !== 'string')
      throw pgErrors.create('STRATA_DB_QUERY_FAILED', {
        message: `Query text must be a string, got ${sql === null ? 'null' : typeof sql}`,
      })
    return this.#statements.get(sql)
  }

  /** Adds an observer (e.g. the query monitor); returns the remove function. */
  addObserver(observer: QueryObserver): () => void {
    this.#observers.add(observer)
    return () => this.#observers.delete(observer)
  }

  record(
    entry: StatementEntry,
    label: string,
    durationMs: number,
    error?: unknown,
    rowCount?: number | null,
  ): void {
    if (error === undefined) {
      let series = entry.byLabel.get(label)
      if (series === undefined) {
        series = this.#histogram.series(this.#labels(entry, label, ''))
        // Bounded: a caller passing unbounded labels should not grow this cache without limit.
        if (entry.byLabel.size < 100) entry.byLabel.set(label, series)
      }
      series.observe(durationMs / 1000)
    } else {
      this.#histogram
        .series(this.#labels(entry, label, errorType(error)))
        .observe(durationMs / 1000)
    }
    if (this.#observers.size > 0) {
      const o: QueryObservation = {
        sql: entry.sql,
        info: entry,
        label,
        durationMs,
        error,
        rowCount,
      }
      for (const observer of this.#observers) observer.onQuery(o)
    }
  }

  #labels(entry: StatementEntry, label: string, error: string): Record<string, string> {
    return {
      db_operation_name: entry.operation,
      db_collection_name: entry.collection,
      label,
      error_type: error,
      pool_name: this.#poolName,
    }
  }
}

/** Low-cardinality error label: the SQLSTATE when the server sent one, else the StrataError code. */
export function errorType(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null
  const causeCode = e?.cause?.code
  if (typeof causeCode === 'string' && /^[0-9A-Z]{5}$/.test(causeCode)) return causeCode
  const code = e?.code
  return typeof code === 'string' ? code : 'error'
}

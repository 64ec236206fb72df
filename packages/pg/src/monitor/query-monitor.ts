import type { Logger } from '@strata/core'
import { LogHistogram } from '../instrument/log-histogram.js'
import type { QueryObservation, QueryObserver } from '../instrument/query-instrument.js'
import { errorType } from '../instrument/query-instrument.js'
import { normalizeSql } from './normalize-sql.js'

export interface MonitorOptions {
  /** Off: `db.query` is not observed at all (stats stay empty). @defaultValue true */
  enabled?: boolean
  /** A statement slower than this (ms) is slow: counted, logged and kept in the slow log. From SLOW_QUERY_THRESHOLD_MS via `databaseOptionsFromEnv` or the service config. @defaultValue 100 */
  slowQueryMs?: number
  /** Distinct normalized statements tracked; the rest are grouped under `(other)`. @defaultValue 500 */
  maxStatements?: number
  /** Distinct labels tracked; the rest are grouped under `(other)`. @defaultValue 200 */
  maxLabels?: number
  /** Ring buffer of recent statements. @defaultValue 100 */
  recentSize?: number
  /** Ring buffer of recent slow statements. @defaultValue 100 */
  slowLogSize?: number
  /** Length of the sliding window behind `stats({ window: 'recent' })` (alerts). @defaultValue 60000 */
  windowMs?: number
}

export interface LatencySummary {
  count: number
  /** ms; from log-bucketed histograms (within ±4.4 %, i.e. at most one bucket). */
  p50: number
  p95: number
  p99: number
  max: number
  meanMs: number
}

export interface GroupStats {
  count: number
  errors: number
  slow: number
  totalMs: number
  meanMs: number
}

/**
 * One normalized statement as the client-side monitor saw it (`db.monitor`); the server's own
 * view, pg_stat_statements, is read by `StatementStats` (`db.statements`).
 */
export interface MonitoredStatement extends LatencySummary {
  /** Normalized SQL (literals → $n); never contains parameter values. */
  sql: string
  operation: string
  table: string
  errors: number
  slow: number
  totalMs: number
  rows: number
  /** Labels (routes/callers) that ran it, most frequent first (up to 5). */
  labels: string[]
}

export interface RecentQuery {
  sql: string
  operation: string
  table: string
  label: string
  durationMs: number
  at: string
  /** SQLSTATE or Strata code when it failed. */
  error?: string
}

export interface MonitorStats extends LatencySummary {
  since: string
  slowQueryMs: number
  slowCount: number
  /** slowCount / count, 0–1. */
  slowShare: number
  errors: number
  byTable: Record<string, GroupStats>
  byType: Record<string, GroupStats>
  byLabel: Record<string, GroupStats>
  /** Statements with slow runs, by total slow time. */
  topSlow: MonitoredStatement[]
  recent: RecentQuery[]
}

export interface WindowStats extends LatencySummary {
  windowMs: number
  slowCount: number
  slowShare: number
  errors: number
}

const OTHER = '(other)'

class Group {
  count = 0
  errors = 0
  slow = 0
  totalMs = 0
  view(): GroupStats {
    return {
      count: this.count,
      errors: this.errors,
      slow: this.slow,
      totalMs: round(this.totalMs),
      meanMs: this.count ? round(this.totalMs / this.count) : 0,
    }
  }
}

class StatementRecord extends Group {
  readonly sql: string
  readonly operation: string
  readonly table: string
  readonly hist = new LogHistogram()
  slowMs = 0
  rows = 0
  readonly labels = new Map<string, number>()
  /** This statement's table and operation groups, resolved once (saves two Map lookups per query). */
  tableGroup: Group | undefined
  typeGroup: Group | undefined
  constructor(sql: string, operation: string, table: string) {
    super()
    this.sql = sql
    this.operation = operation
    this.table = table
  }
}

/** Counters of one window slice (the sliding window is the current and the previous slice). */
class Slice {
  readonly hist = new LogHistogram()
  slow = 0
  errors = 0
  totalMs = 0
  reset(): void {
    this.hist.reset()
    this.slow = 0
    this.errors = 0
    this.totalMs = 0
  }
}

export function round(n: number, digits = 3): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

function summary(h: LogHistogram, totalMs: number): LatencySummary {
  return {
    count: h.count,
    p50: round(h.quantile(0.5)),
    p95: round(h.quantile(0.95)),
    p99: round(h.quantile(0.99)),
    max: round(h.max),
    meanMs: h.count ? round(totalMs / h.count) : 0,
  }
}

/**
 * The query monitor: an observer of every `db.query` (see `db.observe`). Per distinct statement
 * text the normalisation runs once (cached on the instrument's statement entry, a WeakMap
 * lookup); the per-query work is a few increments, two histogram records and a ring-buffer
 * write. Statements labelled `strata:*` (the monitor's own queries) are ignored.
 */
export class QueryMonitor implements QueryObserver {
  readonly slowQueryMs: number
  readonly #logger: Logger
  readonly #maxStatements: number
  readonly #maxLabels: number
  readonly #windowMs: number
  #byEntry = new WeakMap<object, StatementRecord>()
  readonly #statements = new Map<string, StatementRecord>()
  readonly #byTable = new Map<string, Group>()
  readonly #byType = new Map<string, Group>()
  readonly #byLabel = new Map<string, Group>()
  readonly #all = new LogHistogram()
  #totalMs = 0
  #slow = 0
  #errors = 0
  #since = Date.now()
  // Sliding window: two slices that rotate every windowMs.
  #current = new Slice()
  #previous = new Slice()
  #sliceStart = performance.now()
  // Ring buffers in parallel arrays: no allocation per query.
  readonly #recentStmt: (StatementRecord | undefined)[]
  readonly #recentLabel: string[]
  readonly #recentMs: Float64Array
  readonly #recentAt: Float64Array
  readonly #recentErr: (string | undefined)[]
  #recentPos = 0
  readonly #slowLog: RecentQuery[] = []
  readonly #slowLogSize: number
  #slowLogPos = 0

  constructor(options: Required<Omit<MonitorOptions, 'enabled'>>, logger: Logger) {
    this.slowQueryMs = options.slowQueryMs
    this.#logger = logger
    this.#maxStatements = options.maxStatements
    this.#maxLabels = options.maxLabels
    this.#windowMs = options.windowMs
    const n = Math.max(1, options.recentSize)
    this.#recentStmt = new Array<StatementRecord | undefined>(n).fill(undefined)
    this.#recentLabel = new Array<string>(n).fill('')
    this.#recentMs = new Float64Array(n)
    this.#recentAt = new Float64Array(n)
    this.#recentErr = new Array<string | undefined>(n).fill(undefined)
    this.#slowLogSize = Math.max(1, options.slowLogSize)
  }

  onQuery(o: QueryObservation): void {
    const label = o.label
    if (label.length > 7 && label.startsWith('strata:')) return
    let st = this.#byEntry.get(o.info)
    if (st === undefined) {
      st = this.#statementFor(o)
      this.#byEntry.set(o.info, st)
    }
    const ms = o.durationMs
    const failed = o.error !== undefined
    const slow = ms > this.slowQueryMs
    this.#all.record(ms)
    this.#totalMs += ms
    st.hist.record(ms)
    st.count++
    st.totalMs += ms
    if (o.rowCount) st.rows += o.rowCount
    const seen = st.labels.get(label)
    if (seen !== undefined) st.labels.set(label, seen + 1)
    else if (st.labels.size < 20) st.labels.set(label, 1)
    const lg = this.#group(this.#byLabel, label, this.#maxLabels)
    lg.count++
    lg.totalMs += ms
    const tg = (st.tableGroup ??= this.#group(this.#byTable, st.table, this.#maxStatements))
    tg.count++
    tg.totalMs += ms
    const og = (st.typeGroup ??= this.#group(this.#byType, st.operation, 64))
    og.count++
    og.totalMs += ms

    const now = performance.now()
    if (now - this.#sliceStart >= this.#windowMs) this.#rotate(now)
    const cur = this.#current
    cur.hist.record(ms)
    cur.totalMs += ms

    const pos = this.#recentPos
    this.#recentStmt[pos] = st
    this.#recentLabel[pos] = label
    this.#recentMs[pos] = ms
    this.#recentAt[pos] = performance.timeOrigin + now
    this.#recentErr[pos] = failed ? errorType(o.error) : undefined
    this.#recentPos = (pos + 1) % this.#recentMs.length

    if (failed) {
      this.#errors++
      st.errors++
      lg.errors++
      tg.errors++
      og.errors++
      cur.errors++
    }
    if (slow) this.#recordSlow(st, lg, tg, og, label, ms, failed ? errorType(o.error) : undefined)
  }

  #recordSlow(
    st: StatementRecord,
    lg: Group,
    tg: Group,
    og: Group,
    label: string,
    ms: number,
    error: string | undefined,
  ): void {
    this.#slow++
    st.slow++
    st.slowMs += ms
    lg.slow++
    tg.slow++
    og.slow++
    this.#current.slow++
    const entry: RecentQuery = {
      sql: st.sql,
      operation: st.operation,
      table: st.table,
      label,
      durationMs: round(ms),
      at: new Date().toISOString(),
      ...(error ? { error } : {}),
    }
    if (this.#slowLog.length < this.#slowLogSize) this.#slowLog.push(entry)
    else this.#slowLog[this.#slowLogPos] = entry
    this.#slowLogPos = (this.#slowLogPos + 1) % this.#slowLogSize
    // Parameters are never passed to the monitor, and literals are already `$n` in `sql`.
    this.#logger.warn(
      { sql: st.sql, label, durationMs: entry.durationMs, thresholdMs: this.slowQueryMs, error },
      'slow query',
    )
  }

  #rotate(now: number): void {
    const elapsed = now - this.#sliceStart
    const old = this.#previous
    this.#previous = this.#current
    this.#current = old
    old.reset()
    // Idle for two windows or more: the previous slice is stale too.
    if (elapsed >= 2 * this.#windowMs) this.#previous.reset()
    this.#sliceStart = now
  }

  #group(map: Map<string, Group>, key: string, max: number): Group {
    let g = map.get(key)
    if (g === undefined) {
      if (map.size >= max) key = OTHER
      g = map.get(key)
      if (g === undefined) {
        g = new Group()
        map.set(key, g)
      }
    }
    return g
  }

  #statementFor(o: QueryObservation): StatementRecord {
    const text = normalizeSql(o.sql).text
    let st = this.#statements.get(text)
    if (st === undefined) {
      const full = this.#statements.size >= this.#maxStatements
      const key = full ? OTHER : text
      st = this.#statements.get(key)
      if (st === undefined) {
        st = full
          ? new StatementRecord(OTHER, 'OTHER', '')
          : new StatementRecord(text, o.info.operation, o.info.collection)
        this.#statements.set(key, st)
      }
    }
    return st
  }

  /** Everything since start or the last reset. */
  stats(options: { top?: number; recent?: number } = {}): MonitorStats {
    const top = options.top ?? 10
    const count = this.#all.count
    const obj = (m: Map<string, Group>): Record<string, GroupStats> =>
      Object.fromEntries(
        [...m].sort((a, b) => b[1].totalMs - a[1].totalMs).map(([k, g]) => [k, g.view()]),
      )
    return {
      since: new Date(this.#since).toISOString(),
      slowQueryMs: this.slowQueryMs,
      ...summary(this.#all, this.#totalMs),
      slowCount: this.#slow,
      slowShare: count ? round(this.#slow / count, 4) : 0,
      errors: this.#errors,
      byTable: obj(this.#byTable),
      byType: obj(this.#byType),
      byLabel: obj(this.#byLabel),
      topSlow: [...this.#statements.values()]
        .filter((s) => s.slow > 0)
        .sort((a, b) => b.slowMs - a.slowMs)
        .slice(0, top)
        .map((s) => this.#view(s)),
      recent: this.recent(options.recent ?? 20),
    }
  }

  /** Statements by total time (or `orderBy`), normalized. */
  statements(
    options: { orderBy?: 'total' | 'mean' | 'count' | 'p95'; limit?: number } = {},
  ): MonitoredStatement[] {
    const key = options.orderBy ?? 'total'
    const score = (s: StatementRecord): number =>
      key === 'mean'
        ? s.totalMs / Math.max(1, s.count)
        : key === 'count'
          ? s.count
          : key === 'p95'
            ? s.hist.quantile(0.95)
            : s.totalMs
    return [...this.#statements.values()]
      .sort((a, b) => score(b) - score(a))
      .slice(0, options.limit ?? 20)
      .map((s) => this.#view(s))
  }

  /** The slow log, newest first (normalized SQL, no parameters). */
  slowQueries(limit = this.#slowLogSize): RecentQuery[] {
    const out: RecentQuery[] = []
    const n = this.#slowLog.length
    for (let k = 1; k <= n && out.length < limit; k++) {
      const e = this.#slowLog[(this.#slowLogPos - k + n * 2) % n]
      if (e) out.push(e)
    }
    return out
  }

  /** Most recent statements, newest first. */
  recent(limit = this.#recentMs.length): RecentQuery[] {
    const out: RecentQuery[] = []
    const n = this.#recentMs.length
    for (let k = 1; k <= n && out.length < limit; k++) {
      const i = (this.#recentPos - k + n) % n
      const st = this.#recentStmt[i]
      if (st === undefined) break
      const err = this.#recentErr[i]
      out.push({
        sql: st.sql,
        operation: st.operation,
        table: st.table,
        label: this.#recentLabel[i]!,
        durationMs: round(this.#recentMs[i]!),
        at: new Date(this.#recentAt[i]!).toISOString(),
        ...(err ? { error: err } : {}),
      })
    }
    return out
  }

  /** Statistics over the last one to two windows (what alerts look at). */
  window(): WindowStats {
    const now = performance.now()
    if (now - this.#sliceStart >= this.#windowMs) this.#rotate(now)
    const h = new LogHistogram()
    h.merge(this.#current.hist)
    h.merge(this.#previous.hist)
    const totalMs = this.#current.totalMs + this.#previous.totalMs
    const slow = this.#current.slow + this.#previous.slow
    return {
      windowMs: this.#windowMs,
      ...summary(h, totalMs),
      slowCount: slow,
      slowShare: h.count ? round(slow / h.count, 4) : 0,
      errors: this.#current.errors + this.#previous.errors,
    }
  }

  /** Clears every statistic (pg_stat_statements is never touched). */
  reset(): void {
    this.#statements.clear()
    this.#byTable.clear()
    this.#byType.clear()
    this.#byLabel.clear()
    this.#all.reset()
    this.#totalMs = 0
    this.#slow = 0
    this.#errors = 0
    this.#since = Date.now()
    this.#current.reset()
    this.#previous.reset()
    this.#recentStmt.fill(undefined)
    this.#recentPos = 0
    this.#slowLog.length = 0
    this.#slowLogPos = 0
    // Entries cached per statement text point at the cleared records: drop them.
    this.#byEntry = new WeakMap()
  }

  #view(s: StatementRecord): MonitoredStatement {
    return {
      sql: s.sql,
      operation: s.operation,
      table: s.table,
      ...summary(s.hist, s.totalMs),
      errors: s.errors,
      slow: s.slow,
      totalMs: round(s.totalMs),
      rows: s.rows,
      labels: [...s.labels]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5)
        .map(([l]) => l),
    }
  }
}

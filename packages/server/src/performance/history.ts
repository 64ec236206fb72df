import type { HealthReport } from './health-score.js'
import type { PerformanceSnapshot } from './snapshot.js'

/** One point of the service's own history (GET /v1/performance/history). */
export interface HistoryEntry {
  at: string
  score: number
  queries: number
  p95Ms: number
  slowShare: number
  poolUtilization: number
  eventLoopP99Ms: number
  heapUsedRatio: number
}

export interface ServiceHistoryOptions {
  /** Entries kept; the oldest is dropped past it. @defaultValue 1440 (24 h at one a minute) */
  max?: number
  /** Least time between two entries (ms). @defaultValue 60000 */
  everyMs?: number
}

/** A ring of evaluation results, at most one per `everyMs`, held in memory. */
export class ServiceHistory {
  readonly #entries: HistoryEntry[] = []
  readonly #max: number
  readonly #everyMs: number
  #lastAt = 0

  constructor(options: ServiceHistoryOptions = {}) {
    this.#max = options.max ?? 1440
    this.#everyMs = options.everyMs ?? 60_000
  }

  /** Records an evaluation unless the last entry is younger than `everyMs`. */
  record(snapshot: PerformanceSnapshot, health: HealthReport, now = Date.now()): void {
    if (now - this.#lastAt < this.#everyMs) return
    this.#lastAt = now
    this.#entries.push({
      at: snapshot.at,
      score: health.overall.score,
      queries: snapshot.database.queries.count,
      p95Ms: snapshot.database.queries.p95,
      slowShare: snapshot.database.queries.slowShare,
      poolUtilization: snapshot.database.pool.utilization,
      eventLoopP99Ms: snapshot.application.eventLoop.delayP99Ms,
      heapUsedRatio: snapshot.application.memory.heapUsedRatio,
    })
    if (this.#entries.length > this.#max) this.#entries.shift()
  }

  /** The entries at or after `since` (epoch ms), oldest first. */
  since(since: number): HistoryEntry[] {
    return this.#entries.filter((h) => Date.parse(h.at) >= since)
  }
}

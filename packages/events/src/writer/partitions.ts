import type { Queryable } from '@strata/pg'

/** Tables partitioned by month on ts. */
export const PARTITIONED_TABLES = ['login_events', 'activity_logs', 'events'] as const
export type PartitionedTable = (typeof PARTITIONED_TABLES)[number]

/** 'YYYYMM' of the UTC month holding `ms`. */
export function monthKey(ms: number): string {
  const d = new Date(ms)
  return `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}`
}

function monthStart(key: string): string {
  return `${key.slice(0, 4)}-${key.slice(4, 6)}-01T00:00:00Z`
}

/**
 * Remembers which monthly partitions exist so the writer asks Postgres only for months it has
 * not seen (a backfill into an old month, a new month starting).
 */
export class PartitionManager {
  #known = new Set<string>()

  /** Creates missing partitions for the given (table, month) pairs; autocommit, idempotent. */
  async ensure(db: Queryable, wanted: Iterable<[PartitionedTable, string]>): Promise<number> {
    let created = 0
    for (const [table, month] of wanted) {
      const k = `${table}:${month}`
      if (this.#known.has(k)) continue
      const res = await db.query<{ created: boolean }>(
        'SELECT strata_events_ensure_partition($1, $2) AS created',
        [table, monthStart(month)],
        { label: 'events.partitions' },
      )
      if (res.rows[0]?.created) created++
      this.#known.add(k)
    }
    return created
  }

  /** Creates this month's and the next `ahead` months' partitions of every table. */
  async ensureAhead(db: Queryable, now = Date.now(), ahead = 2): Promise<number> {
    const wanted: [PartitionedTable, string][] = []
    const d = new Date(now)
    for (let i = 0; i <= ahead; i++) {
      const ms = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + i, 1)
      for (const t of PARTITIONED_TABLES) wanted.push([t, monthKey(ms)])
    }
    return this.ensure(db, wanted)
  }

  /** Forget what we know (after Postgres said a partition is missing, e.g. dropped by retention). */
  reset(): void {
    this.#known.clear()
  }
}

import type { InstanceEntry } from './instance-registry.js'

/** The parts of an instance's overview (GET /v1/performance) the cluster summary reads. */
interface Overview {
  health?: { score?: number; status?: string }
  queries?: { count?: number; slowCount?: number; errors?: number; p95?: number | null }
  pool?: {
    total?: number
    idle?: number
    active?: number
    waiting?: number
    max?: number
    utilization?: number
  }
  process?: {
    eventLoop?: { delayP99Ms?: number }
    memory?: { rssBytes?: number; heapUsedBytes?: number; heapUsedRatio?: number }
  }
  alerts?: { name?: string }[]
}

const STATUS_ORDER = ['excellent', 'good', 'degraded', 'critical']

const sum = (xs: (number | undefined | null)[]): number =>
  xs.reduce<number>((a, x) => a + (typeof x === 'number' ? x : 0), 0)
const max = (xs: (number | undefined | null)[]): number | null => {
  const n = xs.filter((x): x is number => typeof x === 'number')
  return n.length ? Math.max(...n) : null
}

/**
 * The cluster as a whole: counts and sums where adding makes sense (connections, memory,
 * queries), the worst instance where it does not (percentiles, ratios, health): percentiles
 * of different processes cannot be merged, so `maxP95Ms` is the slowest instance's p95.
 */
export function clusterSummary(instances: InstanceEntry[]): Record<string, unknown> {
  const o = instances.map((i) => i.snapshot as Overview)
  const minScore = max(o.map((x) => (typeof x.health?.score === 'number' ? -x.health.score : null)))
  const statuses = o.map((x) => x.health?.status).filter((s): s is string => !!s)
  const worst = statuses.sort((a, b) => STATUS_ORDER.indexOf(b) - STATUS_ORDER.indexOf(a))[0]
  const firing = [...new Set(o.flatMap((x) => (x.alerts ?? []).map((a) => a.name)))].filter(
    (n): n is string => typeof n === 'string',
  )
  return {
    instances: instances.length,
    oldestPublishMs: max(instances.map((i) => i.ageMs)),
    health: { minScore: minScore === null ? null : -minScore, worstStatus: worst ?? null },
    queries: {
      count: sum(o.map((x) => x.queries?.count)),
      slowCount: sum(o.map((x) => x.queries?.slowCount)),
      errors: sum(o.map((x) => x.queries?.errors)),
      maxP95Ms: max(o.map((x) => x.queries?.p95)),
    },
    pool: {
      total: sum(o.map((x) => x.pool?.total)),
      idle: sum(o.map((x) => x.pool?.idle)),
      active: sum(o.map((x) => x.pool?.active)),
      waiting: sum(o.map((x) => x.pool?.waiting)),
      max: sum(o.map((x) => x.pool?.max)),
      maxUtilization: max(o.map((x) => x.pool?.utilization)),
    },
    process: {
      rssBytes: sum(o.map((x) => x.process?.memory?.rssBytes)),
      heapUsedBytes: sum(o.map((x) => x.process?.memory?.heapUsedBytes)),
      maxHeapUsedRatio: max(o.map((x) => x.process?.memory?.heapUsedRatio)),
      maxEventLoopP99Ms: max(o.map((x) => x.process?.eventLoop?.delayP99Ms)),
    },
    alertsFiring: firing,
  }
}

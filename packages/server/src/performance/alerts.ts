import type { PerformanceSnapshot } from './snapshot.js'

export interface AlertThresholds {
  /** Share of slow queries in the monitor window. @defaultValue 0.05 */
  slowQueryShare: number
  /** Fewest queries in the window for the slow share to count. @defaultValue 20 */
  minQueries: number
  /** Query p95 over the window (ms). @defaultValue 500 */
  queryP95Ms: number
  /** Pool utilization, 0–1. @defaultValue 0.8 */
  poolUtilization: number
  /** Callers waiting for a connection for at least this long (ms). @defaultValue 30000 */
  poolWaitingForMs: number
  /** Redis (L2) cache hit rate below this. @defaultValue 0.5 */
  cacheHitRate: number
  /** Fewest L2 requests for the hit rate to count. @defaultValue 100 */
  minCacheRequests: number
  /** Event-loop delay p99 (ms). @defaultValue 100 */
  eventLoopP99Ms: number
  /** Heap used / heap limit. @defaultValue 0.85 */
  heapUsedRatio: number
}

export const ALERT_DEFAULTS: Readonly<AlertThresholds> = Object.freeze({
  slowQueryShare: 0.05,
  minQueries: 20,
  queryP95Ms: 500,
  poolUtilization: 0.8,
  poolWaitingForMs: 30_000,
  cacheHitRate: 0.5,
  minCacheRequests: 100,
  eventLoopP99Ms: 100,
  heapUsedRatio: 0.85,
})

export type AlertName =
  | 'slow_query_share'
  | 'query_p95'
  | 'pool_utilization'
  | 'pool_waiting'
  | 'cache_hit_rate'
  | 'eventloop_delay_p99'
  | 'heap_used'

export interface AlertState {
  name: AlertName
  /** pending: the condition holds but not yet for its required duration. */
  state: 'ok' | 'pending' | 'firing'
  /** When the current state began (ISO 8601). */
  since: string
  /** Latest observed value (null when there was not enough data). */
  value: number | null
  threshold: number
  /** `>` or `<`: how value is compared with threshold. */
  comparison: '>' | '<'
  message: string
}

export interface AlertTransition {
  alert: AlertName
  state: 'firing' | 'resolved'
  value: number | null
  threshold: number
  since: string
  message: string
}

export interface AlertOptions {
  thresholds?: Partial<AlertThresholds>
  /** POST target for alert transitions (JSON); retried, never on the request path. */
  webhookUrl?: string
  /** Attempts per webhook delivery. @defaultValue 3 */
  webhookAttempts?: number
  /** Delay before the first retry; doubles. @defaultValue 500 */
  webhookRetryMs?: number
  /** Per-attempt timeout. @defaultValue 5000 */
  webhookTimeoutMs?: number
  /** Called on delivery failure after the last attempt (logging). */
  onWebhookError?: (err: unknown, transition: AlertTransition) => void
  /**
   * With several instances: the fencing token of this instance's alert leadership, read right
   * before every delivery attempt. null drops the transition (the leader delivers its own), so
   * a deposed leader that wakes up late sends nothing. Absent: always deliver (one instance).
   */
  leaderFence?: () => number | null
  /** Sent in the payload as `instance`, so a receiver can tell who delivered. */
  instanceId?: string
}

interface Rule {
  name: AlertName
  comparison: '>' | '<'
  threshold: number
  /** How long the condition must hold before firing (ms). */
  forMs: number
  read(s: PerformanceSnapshot): number | null
  describe(v: number | null, t: number): string
}

function rules(t: AlertThresholds): Rule[] {
  return [
    {
      name: 'slow_query_share',
      comparison: '>',
      threshold: t.slowQueryShare,
      forMs: 0,
      read: (s) => (s.database.queries.count >= t.minQueries ? s.database.queries.slowShare : null),
      describe: (v, th) => `slow-query share ${fmtPct(v)} (threshold ${fmtPct(th)})`,
    },
    {
      name: 'query_p95',
      comparison: '>',
      threshold: t.queryP95Ms,
      forMs: 0,
      read: (s) => (s.database.queries.count > 0 ? s.database.queries.p95 : null),
      describe: (v, th) => `query p95 ${v ?? '-'} ms (threshold ${th} ms)`,
    },
    {
      name: 'pool_utilization',
      comparison: '>',
      threshold: t.poolUtilization,
      forMs: 0,
      read: (s) => s.database.pool.utilization,
      describe: (v, th) => `pool utilization ${fmtPct(v)} (threshold ${fmtPct(th)})`,
    },
    {
      name: 'pool_waiting',
      comparison: '>',
      threshold: 0,
      forMs: t.poolWaitingForMs,
      read: (s) => s.database.pool.waiting,
      describe: (v) =>
        `${v ?? 0} callers waiting for a pool connection (alert after ${t.poolWaitingForMs / 1000} s)`,
    },
    {
      name: 'cache_hit_rate',
      comparison: '<',
      threshold: t.cacheHitRate,
      forMs: 0,
      read: (s) =>
        s.cache && s.cache.l2HitRate !== null && s.cache.l2Requests >= t.minCacheRequests
          ? s.cache.l2HitRate
          : null,
      describe: (v, th) => `Redis cache hit rate ${fmtPct(v)} (threshold ${fmtPct(th)})`,
    },
    {
      name: 'eventloop_delay_p99',
      comparison: '>',
      threshold: t.eventLoopP99Ms,
      forMs: 0,
      read: (s) => s.application.eventLoop.delayP99Ms,
      describe: (v, th) => `event-loop delay p99 ${v ?? '-'} ms (threshold ${th} ms)`,
    },
    {
      name: 'heap_used',
      comparison: '>',
      threshold: t.heapUsedRatio,
      forMs: 0,
      read: (s) => s.application.memory.heapUsedRatio,
      describe: (v, th) => `heap used ${fmtPct(v)} of the limit (threshold ${fmtPct(th)})`,
    },
  ]
}

function fmtPct(v: number | null): string {
  return v === null ? '-' : `${Math.round(v * 1000) / 10} %`
}

/**
 * Alert rules over performance snapshots. `evaluate` is synchronous and cheap; transitions
 * (firing / resolved) go to the webhook through a small in-memory queue drained in the
 * background with retries, so neither evaluation nor any request ever waits on the webhook.
 */
export class AlertManager {
  readonly thresholds: Readonly<AlertThresholds>
  readonly #rules: Rule[]
  readonly #states = new Map<AlertName, AlertState & { conditionSince: number | null }>()
  readonly #options: AlertOptions
  readonly #queue: AlertTransition[] = []
  #draining: Promise<void> | undefined
  #delivered = 0
  #failed = 0
  #skipped = 0

  constructor(options: AlertOptions = {}) {
    this.#options = options
    this.thresholds = Object.freeze({ ...ALERT_DEFAULTS, ...options.thresholds })
    this.#rules = rules(this.thresholds)
    const now = new Date().toISOString()
    for (const r of this.#rules)
      this.#states.set(r.name, {
        name: r.name,
        state: 'ok',
        since: now,
        value: null,
        threshold: r.threshold,
        comparison: r.comparison,
        message: r.describe(null, r.threshold),
        conditionSince: null,
      })
  }

  /** Applies a snapshot; returns the transitions it caused (also queued for the webhook). */
  evaluate(s: PerformanceSnapshot, now = Date.now()): AlertTransition[] {
    const out: AlertTransition[] = []
    for (const r of this.#rules) {
      const st = this.#states.get(r.name)!
      const v = r.read(s)
      st.value = v
      st.message = r.describe(v, r.threshold)
      const bad = v !== null && (r.comparison === '>' ? v > r.threshold : v < r.threshold)
      if (bad) {
        st.conditionSince ??= now
        const next = now - st.conditionSince >= r.forMs ? 'firing' : 'pending'
        if (next !== st.state) {
          st.state = next
          st.since = new Date(next === 'firing' ? now : st.conditionSince).toISOString()
          if (next === 'firing') out.push(this.#transition(st, 'firing'))
        }
      } else {
        st.conditionSince = null
        if (st.state !== 'ok') {
          const wasFiring = st.state === 'firing'
          st.state = 'ok'
          st.since = new Date(now).toISOString()
          if (wasFiring) out.push(this.#transition(st, 'resolved'))
        }
      }
    }
    if (out.length && this.#options.webhookUrl) {
      // Bounded: when the target is down for long, the oldest transitions go first.
      this.#queue.push(...out)
      if (this.#queue.length > 100) this.#queue.splice(0, this.#queue.length - 100)
      this.#draining ??= this.#drain().finally(() => (this.#draining = undefined))
    }
    return out
  }

  list(): AlertState[] {
    return [...this.#states.values()].map(({ conditionSince: _c, ...rest }) => ({ ...rest }))
  }

  firing(): AlertState[] {
    return this.list().filter((a) => a.state === 'firing')
  }

  /** `skipped`: transitions not delivered because another instance leads the alerts. */
  get webhook(): {
    url: string | null
    delivered: number
    failed: number
    skipped: number
    queued: number
  } {
    return {
      url: this.#options.webhookUrl ? redact(this.#options.webhookUrl) : null,
      delivered: this.#delivered,
      failed: this.#failed,
      skipped: this.#skipped,
      queued: this.#queue.length,
    }
  }

  /** Resolves when queued webhook deliveries are done (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.#draining) await this.#draining
  }

  #transition(st: AlertState, state: 'firing' | 'resolved'): AlertTransition {
    return {
      alert: st.name,
      state,
      value: st.value,
      threshold: st.threshold,
      since: st.since,
      message: st.message,
    }
  }

  async #drain(): Promise<void> {
    const url = this.#options.webhookUrl!
    const attempts = this.#options.webhookAttempts ?? 3
    const retryMs = this.#options.webhookRetryMs ?? 500
    const timeoutMs = this.#options.webhookTimeoutMs ?? 5000
    while (this.#queue.length) {
      const t = this.#queue.shift()!
      let lastErr: unknown
      let ok = false
      let skipped = false
      for (let i = 0; i < attempts && !ok; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, retryMs * 2 ** (i - 1)).unref())
        // Checked before each attempt, with no await until fetch: a retry after losing the
        // leadership (or a leader frozen past its lock's TTL) must not send.
        const fence = this.#options.leaderFence ? this.#options.leaderFence() : undefined
        if (fence === null) {
          skipped = true
          break
        }
        try {
          const res = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              source: 'strata',
              ...(this.#options.instanceId ? { instance: this.#options.instanceId } : {}),
              ...(fence !== undefined ? { fence } : {}),
              ...t,
            }),
            signal: AbortSignal.timeout(timeoutMs),
          })
          await res.arrayBuffer().catch(() => undefined)
          if (res.ok) ok = true
          else lastErr = new Error(`webhook answered ${res.status}`)
        } catch (err) {
          lastErr = err
        }
      }
      if (skipped) this.#skipped++
      else if (ok) this.#delivered++
      else {
        this.#failed++
        this.#options.onWebhookError?.(lastErr, t)
      }
    }
  }
}

function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    if (u.search) u.search = '?…'
    return u.toString()
  } catch {
    return 'invalid URL'
  }
}

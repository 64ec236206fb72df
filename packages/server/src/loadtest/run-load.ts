import { randomUUID } from 'node:crypto'
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks'

export type LoadKind = 'ingest' | 'analytics'

export interface LoadTestOptions {
  /** Base URL of a deployed Strata, e.g. `https://strata.example.com`. */
  url: string
  /** Project write key (`sk_w_…`) for the ingest requests. */
  writeKey: string
  /** Project admin key (`sk_a_…`); required when `mix` includes `analytics`. */
  adminKey?: string
  /** Requests per second, scheduled on a timer whatever the answers do. */
  rate: number
  /** How long to send, in milliseconds. */
  durationMs: number
  /** Request kinds, taken round-robin. @defaultValue ['ingest'] */
  mix?: LoadKind[]
  /** Login events per POST /v1/events/batch. @defaultValue 1 */
  batch?: number
  /** Most requests in flight; a request due while this many are waiting is dropped and counted. @defaultValue 256 */
  concurrency?: number
  /** Per-request timeout in milliseconds. @defaultValue 10000 */
  timeoutMs?: number
  /** Called once a second with the figures so far. */
  onProgress?: (p: LoadProgress) => void
  /** Stops scheduling; requests in flight are still awaited (up to their timeout). */
  signal?: AbortSignal
}

export interface LatencySummary {
  /** Milliseconds, with microsecond resolution. */
  p50: number
  p90: number
  p99: number
  max: number
  mean: number
}

export interface LoadProgress {
  elapsedS: number
  /** Requests sent in the last second. */
  sentPerS: number
  sent: number
  ok: number
  errors: number
  p50: number
  p99: number
}

export interface LoadSummary {
  runId: string
  /** Every ingested event's messageId starts with this. */
  messageIdPrefix: string
  target: { rate: number; durationS: number; mix: LoadKind[]; batch: number; concurrency: number }
  elapsedS: number
  /** Requests scheduled (sent + dropped). */
  scheduled: number
  sent: number
  ok: number
  errors: number
  /** Requests not sent because `concurrency` were already in flight (counted in errors). */
  dropped: number
  achievedRate: number
  /** Events the server accepted (ingest) and reported as duplicates. */
  events: { accepted: number; duplicates: number }
  byKind: Record<LoadKind, { sent: number; ok: number; errors: number }>
  /** Latency from each request's scheduled time to its full answer, so queueing counts. */
  latencyMs: LatencySummary
  errorRate: number
  /** HTTP status, or `network`, `timeout`, `dropped`. */
  errorsByStatus: Record<string, number>
  /** The answer's `error.code` (or a rejected item's), or the network error's code. */
  errorsByCode: Record<string, number>
}

const DEFAULTS = Object.freeze({
  mix: ['ingest'] as LoadKind[],
  batch: 1,
  concurrency: 256,
  timeoutMs: 10_000, // 10 seconds
})

// The scheduler wakes this often and sends what is due; a timer per request would not keep up.
const TICK_MS = 5

function ms(h: RecordableHistogram, p: number): number {
  return h.count === 0 ? 0 : Math.round(h.percentile(p) / 1e3) / 1e3
}

function latency(h: RecordableHistogram): LatencySummary {
  return {
    p50: ms(h, 50),
    p90: ms(h, 90),
    p99: ms(h, 99),
    max: h.count === 0 ? 0 : Math.round(h.max / 1e3) / 1e3,
    mean: h.count === 0 ? 0 : Math.round(h.mean / 1e3) / 1e3,
  }
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1
}

/**
 * Open-loop load against a deployed Strata: `rate` requests a second on a timer for
 * `durationMs`, each with unique messageIds. Resolves with the summary once every request has
 * answered or timed out.
 */
export async function runLoad(options: LoadTestOptions): Promise<LoadSummary> {
  const o = Object.freeze({ ...DEFAULTS, ...options })
  if (o.mix.includes('analytics') && !o.adminKey)
    throw new Error('--mix analytics needs --admin-key')
  if (!(o.rate > 0) || !(o.durationMs >= 0) || !(o.batch >= 1) || !(o.concurrency >= 1))
    throw new RangeError('rate, batch and concurrency must be positive, durationMs not negative')
  const base = o.url.replace(/\/+$/, '')
  const runId = randomUUID().slice(0, 8)
  const prefix = `lt-${runId}-`
  const total = Math.floor((o.rate * o.durationMs) / 1000)
  const interval = 1000 / o.rate
  const hist = createHistogram()
  const byKind: LoadSummary['byKind'] = {
    ingest: { sent: 0, ok: 0, errors: 0 },
    analytics: { sent: 0, ok: 0, errors: 0 },
  }
  const errorsByStatus: Record<string, number> = {}
  const errorsByCode: Record<string, number> = {}
  const events = { accepted: 0, duplicates: 0 }
  let scheduled = 0
  let sent = 0
  let ok = 0
  let errors = 0
  let dropped = 0
  let inFlight = 0
  const pending = new Set<Promise<void>>()

  const fail = (kind: LoadKind, status: string, code: string | undefined) => {
    errors++
    byKind[kind].errors++
    bump(errorsByStatus, status)
    if (code) bump(errorsByCode, code)
  }

  async function one(i: number, kind: LoadKind, dueAt: number): Promise<void> {
    const signal = AbortSignal.timeout(o.timeoutMs)
    try {
      let res: Response
      if (kind === 'ingest') {
        const list = Array.from({ length: o.batch }, (_, j) => ({
          type: 'login',
          messageId: `${prefix}${i}-${j}`,
          userId: `lt-user-${(i * o.batch + j) % 1000}`,
          method: 'email',
          success: true,
        }))
        res = await fetch(`${base}/v1/events/batch`, {
          method: 'POST',
          headers: { authorization: `Bearer ${o.writeKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ events: list }),
          signal,
        })
      } else {
        res = await fetch(`${base}/v1/analytics/logins`, {
          headers: { authorization: `Bearer ${o.adminKey}` },
          signal,
        })
      }
      const text = await res.text()
      hist.record(Math.max(1, Math.round((performance.now() - dueAt) * 1e6)))
      let body: unknown
      try {
        body = text ? JSON.parse(text) : undefined
      } catch {
        body = undefined
      }
      const b = body as
        | {
            accepted?: number
            duplicates?: number
            rejected?: { error?: { code?: string } }[]
            error?: { code?: string }
          }
        | undefined
      if (res.status >= 400) return fail(kind, String(res.status), b?.error?.code ?? 'HTTP_ERROR')
      if (kind === 'ingest') {
        events.accepted += b?.accepted ?? 0
        events.duplicates += b?.duplicates ?? 0
        // A 202 with rejected items still lost events: count it as an error, by the item's code.
        const rejected = b?.rejected?.[0]
        if (rejected) return fail(kind, String(res.status), rejected.error?.code ?? 'REJECTED')
      }
      ok++
      byKind[kind].ok++
    } catch (err) {
      hist.record(Math.max(1, Math.round((performance.now() - dueAt) * 1e6)))
      const e = err as Error & { code?: string; cause?: { code?: string } }
      if (e.name === 'TimeoutError') return fail(kind, 'timeout', 'TIMEOUT')
      fail(kind, 'network', e.cause?.code ?? e.code ?? e.name)
    }
  }

  const start = performance.now()
  let lastSecond = { at: start, sent: 0 }
  const progress = setInterval(() => {
    const now = performance.now()
    o.onProgress?.({
      elapsedS: Math.round((now - start) / 100) / 10,
      sentPerS: Math.round(((sent - lastSecond.sent) * 1000) / (now - lastSecond.at)),
      sent,
      ok,
      errors,
      p50: ms(hist, 50),
      p99: ms(hist, 99),
    })
    lastSecond = { at: now, sent }
  }, 1000)

  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now()
      const due = o.signal?.aborted
        ? scheduled
        : Math.min(total, Math.floor((now - start) / interval) + 1)
      while (scheduled < due) {
        const i = scheduled++
        const kind = o.mix[i % o.mix.length]!
        const dueAt = start + i * interval
        if (inFlight >= o.concurrency) {
          dropped++
          fail(kind, 'dropped', 'CLIENT_CONCURRENCY_LIMIT')
          continue
        }
        sent++
        byKind[kind].sent++
        inFlight++
        const p = one(i, kind, dueAt).finally(() => {
          inFlight--
          pending.delete(p)
        })
        pending.add(p)
      }
      if (scheduled >= total || o.signal?.aborted) {
        clearInterval(timer)
        resolve()
      }
    }
    const timer = setInterval(tick, TICK_MS)
    tick()
  })
  const sendingMs = performance.now() - start
  await Promise.all(pending)
  clearInterval(progress)
  const elapsedS = (performance.now() - start) / 1000

  return {
    runId,
    messageIdPrefix: prefix,
    target: {
      rate: o.rate,
      durationS: o.durationMs / 1000,
      mix: [...o.mix],
      batch: o.batch,
      concurrency: o.concurrency,
    },
    elapsedS: Math.round(elapsedS * 1000) / 1000,
    scheduled,
    sent,
    ok,
    errors,
    dropped,
    // Over the sending window, so the drain of the last answers does not dilute the rate.
    achievedRate: Math.round((sent / Math.max(sendingMs, interval)) * 1000 * 10) / 10,
    events,
    byKind,
    latencyMs: latency(hist),
    errorRate: scheduled === 0 ? 0 : Math.round((errors / scheduled) * 1e4) / 1e4,
    errorsByStatus,
    errorsByCode,
  }
}

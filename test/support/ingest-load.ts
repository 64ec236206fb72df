// An ingest load driver that behaves like an SDK: N concurrent clients POST /v1/events/batch
// with unique messageIds, and a batch that was not acknowledged (503/429/5xx, connection
// error, timeout) is resent as is — same messageIds — after Retry-After or a back-off. Every
// attempt is recorded, so a test can tell what was acknowledged and what the fault did.
import { randomBytes } from 'node:crypto'
import type pg from 'pg'

export interface IngestLoadOptions {
  /** Base URL of the service; a function because a restarted process may listen elsewhere. */
  target: () => string
  writeKey: string
  /** Concurrent clients (closed loop: each waits for its answer). @defaultValue 6 */
  clients?: number
  /** Events per request (login, activity and track in turn). @defaultValue 10 */
  batchSize?: number
  /** messageId prefix. @defaultValue random */
  prefix?: string
  /** Client-side timeout of one request. @defaultValue 40 s */
  requestTimeoutMs?: number
  /** Longest wait before a resend (Retry-After is honoured up to this). @defaultValue 2 s */
  maxRetryDelayMs?: number
  /** Resends per batch before it is given up. @defaultValue 500 */
  maxAttempts?: number
  /** Pause between a client's acknowledged batch and its next one. @defaultValue 0 */
  thinkMs?: number
}

/** One HTTP attempt. `status` 0 = no answer (connection error or client timeout). */
export interface Attempt {
  batch: number
  attempt: number
  start: number
  end: number
  status: number
  code?: string
  /** The error message of a non-2xx answer. */
  message?: string
  retryAfter?: string | null
  error?: string
}

export interface Batch {
  id: number
  messageIds: string[]
  attempts: number
  acked: boolean
  /** 'inserted' count and 'duplicates' count of the acknowledging answer. */
  accepted?: number
  duplicates?: number
  givenUp?: boolean
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = values.slice().sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function errorName(err: unknown): string {
  const e = err as { name?: string; cause?: { code?: string; message?: string } }
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'TIMEOUT'
  return e?.cause?.code ?? e?.cause?.message ?? String(err)
}

export function eventFor(messageId: string, i: number): Record<string, unknown> {
  const userId = `u${i % 50}`
  switch (i % 3) {
    case 0:
      return { type: 'login', messageId, userId, method: 'email', success: true }
    case 1:
      return { type: 'activity', messageId, userId, action: 'view', entityType: 'doc' }
    default:
      return { type: 'track', messageId, userId, event: 'Fault Test', properties: { i } }
  }
}

/** POST one batch; returns the attempt (never throws). */
export async function postBatch(
  url: string,
  writeKey: string,
  events: Record<string, unknown>[],
  timeoutMs = 40_000,
): Promise<Omit<Attempt, 'batch' | 'attempt'> & { body?: unknown }> {
  const start = Date.now()
  try {
    const res = await fetch(`${url}/v1/events/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${writeKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
      signal: AbortSignal.timeout(timeoutMs),
    })
    const text = await res.text()
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      body = text
    }
    const e = (body as { error?: { code?: string; message?: string } })?.error
    return {
      start,
      end: Date.now(),
      status: res.status,
      ...(e?.code ? { code: e.code } : {}),
      ...(e?.message ? { message: e.message } : {}),
      retryAfter: res.headers.get('retry-after'),
      body,
    }
  } catch (err) {
    return { start, end: Date.now(), status: 0, error: errorName(err) }
  }
}

export class IngestLoad {
  readonly prefix: string
  readonly attempts: Attempt[] = []
  readonly batches: Batch[] = []
  readonly #o: Required<Omit<IngestLoadOptions, 'prefix'>>
  #generating = false
  #clients: Promise<void>[] = []

  constructor(options: IngestLoadOptions) {
    this.prefix = options.prefix ?? `f${randomBytes(4).toString('hex')}`
    this.#o = {
      target: options.target,
      writeKey: options.writeKey,
      clients: options.clients ?? 6,
      batchSize: options.batchSize ?? 10,
      requestTimeoutMs: options.requestTimeoutMs ?? 40_000,
      maxRetryDelayMs: options.maxRetryDelayMs ?? 2000,
      maxAttempts: options.maxAttempts ?? 500,
      thinkMs: options.thinkMs ?? 0,
    }
  }

  /** Starts the clients; each sends new batches until stopNew(), resending failures. */
  start(): this {
    this.#generating = true
    for (let c = 0; c < this.#o.clients; c++) this.#clients.push(this.#client())
    return this
  }

  /** Clients stop starting new batches (they still resend unacknowledged ones). */
  stopNew(): void {
    this.#generating = false
  }

  /**
   * Stops new batches and waits until every batch is acknowledged or given up, at most
   * `timeoutMs` (then the remaining ones are given up too).
   */
  async finish(timeoutMs = 120_000): Promise<void> {
    this.stopNew()
    const all = Promise.all(this.#clients)
    const timer = sleep(timeoutMs).then(() => 'timeout' as const)
    if ((await Promise.race([all, timer])) === 'timeout') {
      for (const b of this.batches) if (!b.acked) b.givenUp = true
      await all
    }
  }

  /** Waits until `n` more batches are acknowledged (from now). */
  async waitAcked(n: number, timeoutMs = 60_000): Promise<void> {
    const target = this.ackedBatches().length + n
    const deadline = Date.now() + timeoutMs
    while (this.ackedBatches().length < target) {
      if (Date.now() > deadline)
        throw new Error(`only ${this.ackedBatches().length}/${target} batches acknowledged`)
      await sleep(20)
    }
  }

  ackedBatches(): Batch[] {
    return this.batches.filter((b) => b.acked)
  }

  ackedIds(): string[] {
    return this.ackedBatches().flatMap((b) => b.messageIds)
  }

  sentIds(): string[] {
    return this.batches.flatMap((b) => b.messageIds)
  }

  /** Batches that needed more than one attempt and were finally acknowledged. */
  retriedBatches(): Batch[] {
    return this.batches.filter((b) => b.acked && b.attempts > 1)
  }

  /**
   * Counts of attempts by outcome (`202`, `503 STRATA_DB_UNAVAILABLE`, `0 ECONNREFUSED`, …),
   * of those in flight at some point of [from, to].
   */
  outcomes(from = 0, to = Infinity): Record<string, number> {
    const out: Record<string, number> = {}
    for (const a of this.attempts) {
      if (a.end < from || a.start > to) continue
      const key = a.status === 0 ? `0 ${a.error}` : a.code ? `${a.status} ${a.code}` : `${a.status}`
      out[key] = (out[key] ?? 0) + 1
    }
    return out
  }

  /** Distinct failed answers: `"<status> <code> <message>"` (or `"0 <error>"`). */
  errors(): string[] {
    const out = new Set<string>()
    for (const a of this.attempts) {
      if (a.status >= 200 && a.status < 300) continue
      out.add(a.status === 0 ? `0 ${a.error}` : `${a.status} ${a.code ?? ''} ${a.message ?? ''}`)
    }
    return [...out]
  }

  /** Latencies (ms) of attempts in flight at some point of [from, to]. */
  latencies(from = 0, to = Infinity): number[] {
    return this.attempts.filter((a) => a.end >= from && a.start <= to).map((a) => a.end - a.start)
  }

  /** First acknowledged attempt that started at or after `t` (recovery). */
  firstAckAfter(t: number): Attempt | undefined {
    return this.attempts
      .filter((a) => a.start >= t && a.status >= 200 && a.status < 300)
      .sort((a, b) => a.end - b.end)[0]
  }

  /** A short JSON-able summary for logs and docs/reliability.md. */
  summary(window?: { from: number; to: number }) {
    const lat = this.latencies()
    return {
      batches: this.batches.length,
      events: this.sentIds().length,
      ackedEvents: this.ackedIds().length,
      retriedBatches: this.retriedBatches().length,
      givenUp: this.batches.filter((b) => b.givenUp).length,
      attempts: this.attempts.length,
      outcomes: this.outcomes(),
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      maxMs: Math.max(0, ...lat),
      ...(window
        ? {
            duringFault: this.outcomes(window.from, window.to),
            duringFaultP99Ms: percentile(this.latencies(window.from, window.to), 99),
            duringFaultMaxMs: Math.max(0, ...this.latencies(window.from, window.to)),
          }
        : {}),
    }
  }

  #newBatch(): Batch {
    const id = this.batches.length
    const messageIds = Array.from(
      { length: this.#o.batchSize },
      (_, i) => `${this.prefix}-${id}-${i}`,
    )
    const b: Batch = { id, messageIds, attempts: 0, acked: false }
    this.batches.push(b)
    return b
  }

  async #client(): Promise<void> {
    for (;;) {
      if (!this.#generating) return
      const b = this.#newBatch()
      await this.#send(b)
      if (this.#o.thinkMs) await sleep(this.#o.thinkMs)
    }
  }

  /** Sends until acknowledged, given up, or out of attempts. */
  async #send(b: Batch): Promise<void> {
    const events = b.messageIds.map((id, i) => eventFor(id, i))
    while (!b.acked && !b.givenUp) {
      if (b.attempts >= this.#o.maxAttempts) {
        b.givenUp = true
        return
      }
      b.attempts++
      const r = await postBatch(
        this.#o.target(),
        this.#o.writeKey,
        events,
        this.#o.requestTimeoutMs,
      )
      const { body, ...attempt } = r
      this.attempts.push({ batch: b.id, attempt: b.attempts, ...attempt })
      if (r.status >= 200 && r.status < 300) {
        const answer = body as { accepted: number; duplicates: number; rejected: unknown[] }
        if (answer.rejected?.length)
          throw new Error(`batch ${b.id}: items rejected ${JSON.stringify(answer.rejected)}`)
        b.acked = true
        b.accepted = answer.accepted
        b.duplicates = answer.duplicates
        return
      }
      if (r.status >= 400 && r.status < 500 && r.status !== 429 && r.status !== 408)
        throw new Error(`batch ${b.id}: ${r.status} ${JSON.stringify(body)}`)
      const retryAfterMs = Number(r.retryAfter) * 1000
      const backoff = Math.min(this.#o.maxRetryDelayMs, 100 * 2 ** Math.min(b.attempts, 5))
      const delay = Number.isFinite(retryAfterMs) && retryAfterMs > 0 ? retryAfterMs : backoff
      await sleep(Math.min(this.#o.maxRetryDelayMs, delay) * (0.5 + Math.random() / 2))
    }
  }
}

/** messageId → number of rows across login_events, activity_logs and events for a prefix. */
export async function storedCounts(
  client: pg.Client,
  projectId: string,
  prefix: string,
): Promise<Map<string, number>> {
  const { rows } = await client.query<{ message_id: string; n: string }>(
    `SELECT message_id, count(*) AS n FROM (
       SELECT message_id FROM login_events WHERE project_id = $1 AND message_id LIKE $2
       UNION ALL
       SELECT message_id FROM activity_logs WHERE project_id = $1 AND message_id LIKE $2
       UNION ALL
       SELECT message_id FROM events WHERE project_id = $1 AND message_id LIKE $2
     ) s GROUP BY message_id`,
    [projectId, `${prefix}-%`],
  )
  return new Map(rows.map((r) => [r.message_id, Number(r.n)]))
}

export interface ExactlyOnceReport {
  acked: number
  stored: number
  missing: string[]
  duplicated: string[]
  unknown: string[]
}

/**
 * The invariant: every acknowledged messageId stored exactly once, none stored twice, nothing
 * stored that was never sent.
 */
export async function checkExactlyOnce(
  client: pg.Client,
  projectId: string,
  load: Pick<IngestLoad, 'prefix' | 'ackedIds' | 'sentIds'>,
): Promise<ExactlyOnceReport> {
  const counts = await storedCounts(client, projectId, load.prefix)
  const sent = new Set(load.sentIds())
  const acked = load.ackedIds()
  return {
    acked: acked.length,
    stored: counts.size,
    missing: acked.filter((id) => (counts.get(id) ?? 0) === 0),
    duplicated: [...counts].filter(([, n]) => n > 1).map(([id]) => id),
    unknown: [...counts.keys()].filter((id) => !sent.has(id)),
  }
}

// Small tools shared by the fault tests: HTTP probes sampled during a fault, and a report line
// per fault (the figures docs/reliability.md quotes).
import { appendFileSync } from 'node:fs'

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export interface Probe {
  at: number
  ms: number
  /** 0 = no answer (connection error or client timeout; see `error`). */
  status: number
  code?: string
  retryAfter?: string | null
  error?: string
  body?: unknown
}

/** One GET (or POST with `body`); never throws. */
export async function probe(
  url: string,
  init: { headers?: Record<string, string>; body?: unknown; timeoutMs?: number } = {},
): Promise<Probe> {
  const at = Date.now()
  try {
    const res = await fetch(url, {
      method: init.body === undefined ? 'GET' : 'POST',
      headers: {
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...init.headers,
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: AbortSignal.timeout(init.timeoutMs ?? 30_000),
    })
    const text = await res.text()
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {
      /* not JSON */
    }
    const code = (body as { error?: { code?: string } })?.error?.code
    return {
      at,
      ms: Date.now() - at,
      status: res.status,
      ...(code ? { code } : {}),
      retryAfter: res.headers.get('retry-after'),
      body,
    }
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string } }
    const error =
      e.name === 'TimeoutError' ? 'TIMEOUT' : (e.cause?.code ?? String((err as Error).message))
    return { at, ms: Date.now() - at, status: 0, error }
  }
}

/** Calls `fn` every `everyMs` (sequentially) until stop() is called; collects the results. */
export function sampler<T>(fn: () => Promise<T>, everyMs: number) {
  const results: T[] = []
  let running = true
  const loop = (async () => {
    while (running) {
      results.push(await fn())
      await sleep(everyMs)
    }
  })()
  return {
    results,
    async stop(): Promise<T[]> {
      running = false
      await loop
      return results
    },
  }
}

/** Polls `fn` until it returns true; throws after `timeoutMs` with `what`. */
export async function until(
  what: string,
  fn: () => Promise<boolean> | boolean,
  timeoutMs = 60_000,
  everyMs = 100,
): Promise<number> {
  const started = Date.now()
  for (;;) {
    if (await fn()) return Date.now() - started
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms: ${what}`)
    await sleep(everyMs)
  }
}

/** Tally of probe outcomes: `{ "200": 3, "503 STRATA_NOT_READY": 2, "0 ECONNREFUSED": 1 }`. */
export function tally(probes: Probe[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of probes) {
    const key = p.status === 0 ? `0 ${p.error}` : p.code ? `${p.status} ${p.code}` : `${p.status}`
    out[key] = (out[key] ?? 0) + 1
  }
  return out
}

/**
 * Prints one `[fault-report] <name> <json>` line and, when FAULTS_REPORT names a file, appends
 * the same JSON there (one object per line): the measured figures behind docs/reliability.md.
 */
export function report(name: string, data: Record<string, unknown>): void {
  const line = JSON.stringify({ fault: name, at: new Date().toISOString(), ...data })
  console.log(`[fault-report] ${line}`)
  const file = process.env.FAULTS_REPORT
  if (file) appendFileSync(file, `${line}\n`)
}

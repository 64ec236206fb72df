// Ingestion: the raw COPY ceiling vs the service's batch API and single-event API, same rows,
// same machine, same run. The service is the real `strata start` in a child process (its RSS is
// read from /proc), loaded with autocannon; every figure counts only events acknowledged with
// 2xx, and the run ends with a count and dedup check against PostgreSQL: acknowledged events
// missing from the table are "lost", rows beyond distinct message ids are "duplicated".
//
//   npm run bench -- ingest [--duration 20] [--connections 16] [--single-connections 64] [--quick]
//   (STRATA_BENCH_CHILD_NODE_ARGS adds node flags to the service process, e.g. --cpu-prof)
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { createBenchDatabase } from './bench-database.js'
import { autocannon, freePort, startService, stopService } from './service-child.js'
import type { BenchArgs, BenchMetric, BenchResult } from './types.js'

const ADMIN_TOKEN = `bench-${randomBytes(12).toString('hex')}`
const UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
const METHODS = ['email', 'google', 'okta_saml', 'okta_oauth']

function loginEvent(id: string, i: number): Record<string, unknown> {
  return {
    type: 'login',
    messageId: id,
    userId: `user-${i % 5000}`,
    email: `user-${i % 5000}@example.com`,
    method: METHODS[i % METHODS.length],
    success: i % 10 !== 0,
    ...(i % 10 === 0 ? { failureReason: 'bad_password' } : {}),
    sessionId: i % 10 !== 0 ? `s-${id}` : undefined,
    userAgent: UA,
    ip: '203.0.113.7',
  }
}

function peakRssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const m = /VmHWM:\s+(\d+) kB/.exec(status)
    return m ? Number(m[1]) / 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

/** Raw COPY of the same login rows into the same partitioned table, from Node: the ceiling. */
async function rawCopy(
  url: string,
  projectId: string,
  ms: number,
  connections: number,
  batch: number,
): Promise<{ rows: number; seconds: number }> {
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      return c
    }),
  )
  let rows = 0
  const t0 = performance.now()
  const end = t0 + ms
  const now = new Date().toISOString()
  await Promise.all(
    clients.map(async (c, w) => {
      let n = 0
      while (performance.now() < end) {
        const lines: string[] = []
        for (let i = 0; i < batch; i++, n++) {
          const e = loginEvent(`raw-${w}-${n}`, n)
          lines.push(
            [
              projectId,
              now,
              e.messageId,
              e.userId,
              e.email,
              e.method,
              e.success ? 't' : 'f',
              e.failureReason ?? '\\N',
              e.sessionId ?? '\\N',
              e.ip,
              'desktop',
              'Chrome',
              'Windows',
              UA,
              now,
            ].join('\t'),
          )
        }
        const stream = c.query(
          copyFrom(
            'COPY login_events (project_id, ts, message_id, user_id, email, method, success, failure_reason, session_id, ip, device_type, browser, os, user_agent, received_at) FROM STDIN',
          ),
        )
        await pipeline(Readable.from([lines.join('\n') + '\n']), stream)
        rows += batch
      }
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  await Promise.all(clients.map((c) => c.end()))
  return { rows, seconds }
}

interface FlushTotals {
  flushes: number
  seconds: number
  rows: number
}

/** The writer's flush counters from the service's /metrics (Prometheus text). */
async function flushTotals(base: string): Promise<FlushTotals> {
  const text = await (await fetch(`${base}/metrics`)).text()
  const num = (name: string) => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text)
    return m ? Number(m[1]) : Number.NaN
  }
  return {
    flushes: num('strata_ingest_flush_duration_seconds_count'),
    seconds: num('strata_ingest_flush_duration_seconds_sum'),
    rows: num('strata_ingest_flushed_rows_total'),
  }
}

/** Rows per flush and mean flush time (BEGIN to COMMIT, retries included) between two reads. */
function flushStats(a: FlushTotals, b: FlushTotals): { rowsPerFlush: number; meanMs: number } {
  const n = b.flushes - a.flushes
  return { rowsPerFlush: (b.rows - a.rows) / n, meanMs: ((b.seconds - a.seconds) / n) * 1000 }
}

async function check(
  url: string,
  projectId: string,
  prefix: string,
): Promise<{ stored: number; distinct: number }> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    const r = await c.query<{ n: string; d: string }>(
      `SELECT count(*) AS n, count(DISTINCT message_id) AS d FROM login_events WHERE project_id = $1 AND message_id LIKE $2`,
      [projectId, `${prefix}%`],
    )
    return { stored: Number(r.rows[0]!.n), distinct: Number(r.rows[0]!.d) }
  } finally {
    await c.end()
  }
}

export default async function run(args: BenchArgs = {}): Promise<BenchResult> {
  const quick = args.quick ?? false
  const duration = Number(args.options?.duration ?? (quick ? 5 : 20))
  const connections = Number(args.options?.connections ?? 16)
  const singleConnections = Number(args.options?.['single-connections'] ?? 64)
  const batchSize = 100
  const bdb = await createBenchDatabase('ingest')
  const url = bdb.url
  const port = await freePort()
  let child: ChildProcess | undefined
  try {
    child = await startService(url, port, { STRATA_ADMIN_TOKEN: ADMIN_TOKEN })
    const base = `http://127.0.0.1:${port}`
    const created = await fetch(`${base}/v1/projects`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench' }),
    })
    const project = (await created.json()) as {
      project: { id: string }
      keys: { write: string; admin: string }
    }
    const projectId = project.project.id
    const headers = {
      authorization: `Bearer ${project.keys.write}`,
      'content-type': 'application/json',
    }

    // 1. Ceiling: raw COPY, 2 connections (the writer's flush concurrency), 1000-row batches.
    const raw = await rawCopy(url, projectId, duration * 1000, 2, 1000)
    const rawRate = raw.rows / raw.seconds

    // 2. Batch API: 100 events per request.
    const beforeBatch = await flushTotals(base)
    let seq = 0
    const batchRun = await autocannon({
      url: `${base}/v1/events/batch`,
      method: 'POST',
      connections,
      duration,
      headers,
      requests: [
        {
          setupRequest: (req: Record<string, unknown>) => {
            const r = seq++
            const events = Array.from({ length: batchSize }, (_, i) =>
              loginEvent(`b-${r}-${i}`, r * batchSize + i),
            )
            return { ...req, body: JSON.stringify({ events, sentAt: new Date().toISOString() }) }
          },
        },
      ],
    })
    const afterBatch = await flushTotals(base)
    const batchCheck = await check(url, projectId, 'b-')
    const batchAcked = batchRun['2xx'] * batchSize
    const rssAfterBatch = peakRssMiB(child.pid!)

    // 3. Single-event API: one login per request.
    let one = 0
    const singleRun = await autocannon({
      url: `${base}/v1/logins`,
      method: 'POST',
      connections: singleConnections,
      duration,
      headers,
      requests: [
        {
          setupRequest: (req: Record<string, unknown>) => {
            const r = one++
            const { type: _type, ...e } = loginEvent(`s-${r}`, r)
            return { ...req, body: JSON.stringify(e) }
          },
        },
      ],
    })
    const afterSingle = await flushTotals(base)
    const singleCheck = await check(url, projectId, 's-')
    const singleAcked = singleRun['2xx']

    // 4. Session validation (GET /v1/sessions/:id), served from the cache after the first read.
    // Sessions take the admin key, and Strata generates their ids.
    const adminAuth = `Bearer ${project.keys.admin}`
    const session = (await (
      await fetch(`${base}/v1/sessions`, {
        method: 'POST',
        headers: { ...headers, authorization: adminAuth },
        body: JSON.stringify({ userId: 'bench-user' }),
      })
    ).json()) as { session: { sessionId: string } }
    const sessionRun = await autocannon({
      url: `${base}/v1/sessions/${session.session.sessionId}`,
      method: 'GET',
      connections: 8,
      duration: Math.min(duration, 5),
      headers: { authorization: adminAuth },
    })
    const rss = peakRssMiB(child.pid!)

    const batchFlush = flushStats(beforeBatch, afterBatch)
    const singleFlush = flushStats(afterBatch, afterSingle)
    const batchRate = batchAcked / batchRun.duration
    const singleRate = singleAcked / singleRun.duration
    const rawLabel = 'raw COPY from Node (2 conns, 1000-row batches, same table)'
    const results: BenchMetric[] = [
      { metric: 'raw COPY ceiling', value: rawRate, unit: 'events/s' },
      {
        metric: `batch API (${batchSize}/req, c=${connections})`,
        value: batchRate,
        unit: 'events/s',
        baseline: rawLabel,
        baselineValue: rawRate,
        ratio: batchRate / rawRate,
        goal: '>= 30000 events/s',
        pass: batchRate >= 30_000,
      },
      {
        metric: 'batch API p99',
        value: batchRun.latency.p99,
        unit: 'ms',
        goal: '< 60 ms',
        pass: batchRun.latency.p99 < 60,
      },
      {
        metric: 'batch API non-2xx + errors',
        value: batchRun.non2xx + batchRun.errors + batchRun.timeouts,
        unit: 'requests',
      },
      {
        metric: `single-event API (c=${singleConnections})`,
        value: singleRate,
        unit: 'req/s',
        baseline: rawLabel,
        baselineValue: rawRate,
        ratio: singleRate / rawRate,
        goal: '>= 5000 req/s',
        pass: singleRate >= 5_000,
      },
      {
        metric: 'single-event API p99',
        value: singleRun.latency.p99,
        unit: 'ms',
        goal: '< 25 ms',
        pass: singleRun.latency.p99 < 25,
      },
      {
        metric: 'single-event API non-2xx + errors',
        value: singleRun.non2xx + singleRun.errors + singleRun.timeouts,
        unit: 'requests',
      },
      { metric: 'batch phase: rows per flush', value: batchFlush.rowsPerFlush, unit: 'rows' },
      { metric: 'batch phase: mean flush time', value: batchFlush.meanMs, unit: 'ms' },
      { metric: 'single phase: rows per flush', value: singleFlush.rowsPerFlush, unit: 'rows' },
      { metric: 'single phase: mean flush time', value: singleFlush.meanMs, unit: 'ms' },
      {
        metric: 'lost (acknowledged but not stored)',
        value:
          Math.max(0, batchAcked - batchCheck.distinct) +
          Math.max(0, singleAcked - singleCheck.distinct),
        unit: 'events',
        goal: '0',
        pass: batchCheck.distinct >= batchAcked && singleCheck.distinct >= singleAcked,
      },
      {
        metric: 'duplicated (rows beyond distinct message ids)',
        value:
          batchCheck.stored - batchCheck.distinct + (singleCheck.stored - singleCheck.distinct),
        unit: 'rows',
        goal: '0',
        pass:
          batchCheck.stored === batchCheck.distinct && singleCheck.stored === singleCheck.distinct,
      },
      {
        metric: 'session validation GET (cached, c=8)',
        value: sessionRun.requests.average,
        unit: 'req/s',
      },
      {
        metric: 'session validation p50 (client-side, incl. HTTP)',
        value: sessionRun.latency.p50,
        unit: 'ms',
      },
      {
        metric: 'session validation p99 (client-side, incl. HTTP)',
        value: sessionRun.latency.p99,
        unit: 'ms',
      },
      { metric: 'service RSS peak (after batch phase)', value: rssAfterBatch, unit: 'MiB' },
      { metric: 'service RSS peak (whole run)', value: rss, unit: 'MiB' },
    ]
    return {
      name: 'ingest',
      params: { durationSeconds: duration, connections, singleConnections, batchSize },
      results,
      notes: [
        'Everything on one machine: PostgreSQL, the service (one Node process) and the load generator (autocannon, in the bench process) share the cores.',
        'Only 2xx answers count as delivered; 202 is sent after the group-commit transaction (dedup keys, COPY, rollups, user bitmaps) has committed.',
        `Stored after the batch phase: ${batchCheck.stored} rows for ${batchAcked} acknowledged events (rows may exceed acks when a request committed but the client had already timed out).`,
        'Single-event throughput at a fixed connection count is bounded by connections / (flush latency incl. the COMMIT fsync); raise --single-connections to trade latency for throughput.',
        'The raw COPY ceiling writes the same rows into the same partitioned table with the same indexes, but without dedup, rollups, sessions, HTTP, JSON or validation.',
      ],
    }
  } finally {
    if (child) {
      await stopService(child)
    }
    await bdb.drop()
  }
}

import { parseArgs } from 'node:util'
import { runLoad, type LoadKind, type LoadSummary } from '../../loadtest/run-load.js'
import type { Command } from '../command.js'
import { interruptCounter } from '../interrupts.js'

// Bounds so a typo cannot turn a load test into an attack on someone's service.
const MAX_RATE = 50_000 // requests per second
const MAX_DURATION_S = 3_600 // one hour
const MAX_BATCH = 100 // the service's default maxBatchItems
const MAX_CONCURRENCY = 10_000

function num(name: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback
  const n = Number(value.replace(/_/g, ''))
  if (!Number.isFinite(n) || n <= 0 || n > max)
    throw new Error(`--${name} must be a number in (0, ${max}]`)
  return n
}

function summaryText(s: LoadSummary): string {
  const l = s.latencyMs
  const lines = [
    `target    ${s.target.rate}/s for ${s.target.durationS}s, mix ${s.target.mix.join(',')}, batch ${s.target.batch}`,
    `achieved  ${s.achievedRate}/s (${s.sent} sent in ${s.elapsedS}s, ${s.dropped} dropped)`,
    `answers   ${s.ok} ok, ${s.errors} errors (${(s.errorRate * 100).toFixed(2)}%)`,
    `events    ${s.events.accepted} accepted, ${s.events.duplicates} duplicates`,
    `latency   p50 ${l.p50}ms  p90 ${l.p90}ms  p99 ${l.p99}ms  max ${l.max}ms  mean ${l.mean}ms`,
  ]
  for (const [status, n] of Object.entries(s.errorsByStatus))
    lines.push(`status    ${status}: ${n}`)
  for (const [code, n] of Object.entries(s.errorsByCode)) lines.push(`code      ${code}: ${n}`)
  return lines.join('\n')
}

export const loadtestCommand: Command = {
  name: 'loadtest',
  summary: 'open-loop HTTP load against a deployed Strata (strata loadtest --url … --rate 500)',
  usage: `strata loadtest --url <base> --key <write key> --rate N --duration S [--mix ingest,analytics]
                [--admin-key K] [--batch N] [--concurrency C] [--timeout MS] [--max-error-rate R] [--json]

Sends N requests a second for S seconds on a timer, whether or not earlier ones answered
(open loop: latency under overload includes the queueing a real client would see). Ingest
requests POST --batch login events with unique messageIds (lt-<run>-…) to /v1/events/batch;
analytics requests GET /v1/analytics/logins with --admin-key. Prints a progress line a second
on stderr and a summary at the end.
--url             base URL of the service (required)
--key             project write key (required)
--rate            requests per second (default 100, at most ${MAX_RATE})
--duration        seconds (default 10, at most ${MAX_DURATION_S})
--mix             request kinds taken in turn: ingest, analytics (default ingest)
--admin-key       project admin key (required with analytics in --mix)
--batch           events per ingest request (default 1, at most ${MAX_BATCH})
--concurrency     most requests in flight; one due beyond that is dropped and counted (default 256)
--timeout         per-request timeout in ms (default 10000)
--max-error-rate  errors / scheduled requests tolerated before exit 1 (default 0: any error)
--json            print the summary as JSON on stdout only

Exit code 0, or 1 when the error rate exceeds --max-error-rate.`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        key: { type: 'string' },
        'admin-key': { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        mix: { type: 'string' },
        batch: { type: 'string' },
        concurrency: { type: 'string' },
        timeout: { type: 'string' },
        'max-error-rate': { type: 'string' },
        json: { type: 'boolean' },
      },
    })
    if (!values.url || !values.key) {
      process.stderr.write(`strata loadtest: --url and --key are required\n${this.usage}\n`)
      return 1
    }
    let url: URL
    try {
      url = new URL(values.url)
    } catch {
      process.stderr.write(`strata loadtest: --url ${JSON.stringify(values.url)} is not a URL\n`)
      return 1
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      process.stderr.write('strata loadtest: --url must be http: or https:\n')
      return 1
    }
    const mix = (values.mix ?? 'ingest').split(',').map((k) => k.trim())
    const bad = mix.find((k) => k !== 'ingest' && k !== 'analytics')
    if (bad !== undefined || mix.length === 0) {
      process.stderr.write(`strata loadtest: --mix takes ingest and/or analytics\n`)
      return 1
    }
    if (mix.includes('analytics') && !values['admin-key']) {
      process.stderr.write('strata loadtest: --mix analytics needs --admin-key\n')
      return 1
    }
    const rate = num('rate', values.rate, 100, MAX_RATE)
    const duration = num('duration', values.duration, 10, MAX_DURATION_S)
    const batch = Math.floor(num('batch', values.batch, 1, MAX_BATCH))
    const concurrency = Math.floor(num('concurrency', values.concurrency, 256, MAX_CONCURRENCY))
    const timeoutMs = num('timeout', values.timeout, 10_000, 600_000)
    const maxErrorRate =
      values['max-error-rate'] === undefined ? 0 : Number(values['max-error-rate'])
    if (!(maxErrorRate >= 0 && maxErrorRate <= 1)) {
      process.stderr.write('strata loadtest: --max-error-rate must be in [0, 1]\n')
      return 1
    }

    // Ctrl-C stops scheduling and still prints the summary of what was sent; a second press
    // (not npm's forwarded copy of the first) quits at once.
    const stop = new AbortController()
    const press = interruptCounter()
    const onSigint = () => {
      const n = press()
      if (n === 1) stop.abort()
      else if (n !== undefined) process.exit(130)
    }
    process.on('SIGINT', onSigint)
    let summary: LoadSummary
    try {
      summary = await runLoad({
        url: url.href,
        writeKey: values.key,
        ...(values['admin-key'] ? { adminKey: values['admin-key'] } : {}),
        rate,
        durationMs: duration * 1000,
        mix: mix as LoadKind[],
        batch,
        concurrency,
        timeoutMs,
        signal: stop.signal,
        onProgress: (p) =>
          process.stderr.write(
            `${p.elapsedS.toFixed(1)}s  sent/s ${p.sentPerS}  ok ${p.ok}  errors ${p.errors}  p50 ${p.p50}ms  p99 ${p.p99}ms\n`,
          ),
      })
    } finally {
      process.off('SIGINT', onSigint)
    }
    process.stdout.write(values.json ? `${JSON.stringify(summary)}\n` : `${summaryText(summary)}\n`)
    if (stop.signal.aborted) return 130
    return summary.errorRate > maxErrorRate ? 1 : 0
  },
}

import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks'
import v8 from 'node:v8'
import { Gauge, Registry } from 'prom-client'

export interface ProcessStats {
  eventLoop: {
    /** Event-loop delay percentiles (ms) over the last window. */
    delayP50Ms: number
    delayP99Ms: number
    delayMaxMs: number
    /** Share of the last window the loop was busy, 0–1. */
    utilization: number
  }
  memory: {
    rssBytes: number
    heapUsedBytes: number
    heapTotalBytes: number
    /** V8's heap size limit (--max-old-space-size). */
    heapLimitBytes: number
    /** heapUsed / heapLimit, 0–1. */
    heapUsedRatio: number
    externalBytes: number
  }
  uptimeSeconds: number
}

export interface ProcessMonitorOptions {
  /** Sampling resolution of the event-loop delay histogram (ms). @defaultValue 10 */
  resolutionMs?: number
  /** Window the delay percentiles and utilization cover; rotated on read when older. @defaultValue 30000 */
  windowMs?: number
}

/**
 * Event-loop delay (perf_hooks.monitorEventLoopDelay: a libuv timer sampling at `resolutionMs`,
 * no per-request cost), event-loop utilization and memory. Percentiles cover the last window:
 * the histogram is reset when a read finds it older than `windowMs`, the previous window's
 * figures being kept so a read right after a reset is not empty.
 */
export class ProcessMonitor {
  readonly registry = new Registry()
  readonly #hist: IntervalHistogram
  readonly #windowMs: number
  #windowStart = performance.now()
  #elu = performance.eventLoopUtilization()
  #last: ProcessStats['eventLoop'] = { delayP50Ms: 0, delayP99Ms: 0, delayMaxMs: 0, utilization: 0 }

  constructor(options: ProcessMonitorOptions = {}) {
    this.#windowMs = options.windowMs ?? 30_000
    this.#hist = monitorEventLoopDelay({ resolution: options.resolutionMs ?? 10 })
    this.#hist.enable()
    const registers = [this.registry]
    // Names in the style of prom-client's defaults (nodejs_eventloop_lag_*), but "delay" as
    // perf_hooks and OpenTelemetry's nodejs.eventloop.delay call it; percentiles of our window.
    const stats = (): ProcessStats => this.stats()
    const gauge = (name: string, help: string, read: (s: ProcessStats) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(stats()))
        },
      })
    }
    gauge(
      'nodejs_eventloop_delay_p50_seconds',
      'Event-loop delay, median of the last window',
      (s) => s.eventLoop.delayP50Ms / 1000,
    )
    gauge(
      'nodejs_eventloop_delay_p99_seconds',
      'Event-loop delay, 99th percentile of the last window',
      (s) => s.eventLoop.delayP99Ms / 1000,
    )
    gauge(
      'nodejs_eventloop_utilization_ratio',
      'Share of time the event loop was busy in the last window',
      (s) => s.eventLoop.utilization,
    )
    gauge('nodejs_heap_used_ratio', 'V8 heap used / heap size limit', (s) => s.memory.heapUsedRatio)
  }

  stats(): ProcessStats {
    const now = performance.now()
    const h = this.#hist
    const elu = performance.eventLoopUtilization(this.#elu)
    if (h.count > 0) {
      this.#last = {
        delayP50Ms: round(h.percentile(50) / 1e6),
        delayP99Ms: round(h.percentile(99) / 1e6),
        delayMaxMs: round(h.max / 1e6),
        utilization: round(elu.utilization, 4),
      }
    }
    if (now - this.#windowStart >= this.#windowMs) {
      h.reset()
      this.#elu = performance.eventLoopUtilization()
      this.#windowStart = now
    }
    const mem = process.memoryUsage()
    const limit = v8.getHeapStatistics().heap_size_limit
    return {
      eventLoop: { ...this.#last },
      memory: {
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        heapTotalBytes: mem.heapTotal,
        heapLimitBytes: limit,
        heapUsedRatio: round(mem.heapUsed / limit, 4),
        externalBytes: mem.external,
      },
      uptimeSeconds: Math.round(process.uptime()),
    }
  }

  stop(): void {
    this.#hist.disable()
  }
}

function round(n: number, d = 3): number {
  const f = 10 ** d
  return Math.round(n * f) / f
}

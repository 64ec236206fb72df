import type { Duration } from '@strata/core'
import { parseDuration } from '@strata/core'

export interface WarmTask<T = unknown> {
  key: string
  factory: () => T | Promise<T>
  /** Higher runs first. @defaultValue 0 */
  priority?: number
  ttl?: Duration
  grace?: Duration
  tags?: string[]
}

export interface WarmOptions {
  /** Tasks run at once. @defaultValue 4 */
  concurrency?: number
  /** Extra attempts per failing task. @defaultValue 2 */
  retries?: number
  /** Delay before a retry (doubles each attempt). @defaultValue '100ms' */
  retryDelay?: Duration
  onProgress?: (p: WarmProgress) => void
}

export interface WarmProgress {
  total: number
  done: number
  failed: number
  key: string
}

export interface WarmResult {
  total: number
  succeeded: number
  failed: { key: string; error: unknown }[]
  durationMs: number
}

/** Runs tasks by priority with bounded concurrency and retries; `write` stores each value. */
export async function runWarm(
  tasks: WarmTask[],
  opts: WarmOptions,
  write: (task: WarmTask, value: unknown) => Promise<void>,
  progress: (p: WarmProgress) => void,
): Promise<WarmResult> {
  const t0 = performance.now()
  const queue = tasks
    .map((t, i) => ({ t, i }))
    .sort((a, b) => (b.t.priority ?? 0) - (a.t.priority ?? 0) || a.i - b.i)
    .map((x) => x.t)
  const concurrency = Math.max(1, opts.concurrency ?? 4)
  const retries = Math.max(0, opts.retries ?? 2)
  const retryDelay = parseDuration(opts.retryDelay ?? 100, 'retryDelay')
  const failed: { key: string; error: unknown }[] = []
  let succeeded = 0
  let next = 0
  const report = (key: string): void => {
    const p = { total: tasks.length, done: succeeded + failed.length, failed: failed.length, key }
    opts.onProgress?.(p)
    progress(p)
  }
  const worker = async (): Promise<void> => {
    while (next < queue.length) {
      const task = queue[next++]!
      let lastErr: unknown
      let ok = false
      for (let attempt = 0; attempt <= retries && !ok; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, retryDelay * 2 ** (attempt - 1)))
        try {
          await write(task, await task.factory())
          ok = true
        } catch (err) {
          lastErr = err
        }
      }
      if (ok) succeeded++
      else failed.push({ key: task.key, error: lastErr })
      report(task.key)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker))
  return { total: tasks.length, succeeded, failed, durationMs: performance.now() - t0 }
}

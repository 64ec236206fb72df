import type { Cache, WarmResult, WarmTask } from '@strata/cache'
import { serverErrors } from '../errors.js'

/** Named task lists a warm-up can run (`{"warmer": name}`; all of them when absent). */
export type Warmers = Record<string, () => WarmTask[] | Promise<WarmTask[]>>

/** A warm-up run; its progress fields are updated in place while it runs. */
export interface WarmupRun {
  id: number
  warmer: string | null
  state: 'running' | 'done' | 'failed'
  startedAt: string
  total: number
  done: number
  failed: number
  result?: Omit<WarmResult, 'failed'> & { failed: { key: string; error: string }[] }
  error?: string
}

/** One cache warm-up at a time, run in the background; the latest run is kept for its status. */
export class CacheWarmup {
  readonly #warmers: Warmers
  #current: WarmupRun | undefined
  #seq = 0

  constructor(warmers: Warmers = {}) {
    this.#warmers = warmers
  }

  /**
   * Starts warming `cache` with one warmer's tasks (all warmers' when absent) and returns the
   * run at once. Throws a 400 for an unknown warmer or while another run is going.
   */
  async start(cache: Cache, warmer?: string, concurrency?: number): Promise<WarmupRun> {
    if (warmer !== undefined && !(warmer in this.#warmers))
      throw serverErrors.create('STRATA_VALIDATION_FAILED', {
        message: `unknown warmer ${JSON.stringify(warmer)}`,
        details: { known: Object.keys(this.#warmers) },
      })
    if (this.#current?.state === 'running')
      throw serverErrors.create('STRATA_BAD_REQUEST', {
        message: 'A cache warm-up is already running',
        details: { id: this.#current.id },
      })
    const names = warmer !== undefined ? [warmer] : Object.keys(this.#warmers)
    const tasks = (await Promise.all(names.map((n) => this.#warmers[n]!()))).flat()
    const run: WarmupRun = {
      id: ++this.#seq,
      warmer: warmer ?? null,
      state: 'running',
      startedAt: new Date().toISOString(),
      total: tasks.length,
      done: 0,
      failed: 0,
    }
    this.#current = run
    cache
      .warm(tasks, {
        ...(concurrency ? { concurrency } : {}),
        onProgress: (p) => {
          run.done = p.done
          run.failed = p.failed
        },
      })
      .then(
        (result) => {
          Object.assign(run, {
            state: 'done',
            result: {
              ...result,
              failed: result.failed.map((f) => ({
                key: f.key,
                error: String((f.error as Error)?.message ?? f.error),
              })),
            },
          })
        },
        (err: unknown) => Object.assign(run, { state: 'failed', error: (err as Error).message }),
      )
    return run
  }

  /** The latest run, or `idle` with the warmers' names. */
  status(): WarmupRun | { state: 'idle'; warmers: string[] } {
    return this.#current ?? { state: 'idle', warmers: Object.keys(this.#warmers) }
  }
}

import { fileURLToPath } from 'node:url'
import { MessageChannel } from 'node:worker_threads'
import { Piscina } from 'piscina'
import { importErrors, type ImportErrorCode } from './errors.js'
import type { MainMessage, ParseTask, WorkerMessage } from './parse-worker.js'
import type { Batch } from './read-batches.js'

export interface WorkerBatches {
  header: string[] | undefined
  batches: AsyncGenerator<Batch>
  close(): Promise<void>
}

// From TypeScript sources (tests, tsx) the worker needs tsx and the source export condition.
const fromSource = import.meta.url.endsWith('.ts')
const filename = fileURLToPath(
  new URL(fromSource ? './parse-worker.ts' : './parse-worker.js', import.meta.url),
)

/**
 * Parsing and conversion in a piscina worker thread, streamed back batch by batch: the main
 * thread keeps the lookups and the database I/O, so the two overlap on two cores. At most
 * `task.credits` batches are in flight (backpressure), each acknowledged with the batch size
 * the main thread wants next (adaptive sizing). An aborted `signal` (a pause) tells the worker
 * to stop reading at once and ends the batches without the ones still queued.
 */
export async function openWorkerBatches(
  task: Omit<ParseTask, 'port'>,
  batchSize: () => number,
  signal?: AbortSignal,
): Promise<WorkerBatches> {
  const pool = new Piscina({
    filename,
    minThreads: 1,
    maxThreads: 1,
    ...(fromSource ? { execArgv: ['--conditions=strata-source', '--import', 'tsx'] } : {}),
  })
  const { port1, port2 } = new MessageChannel()
  const queue: WorkerMessage[] = []
  let wake: (() => void) | undefined
  port1.on('message', (m: WorkerMessage) => {
    queue.push(m)
    wake?.()
  })
  let failure: unknown
  const run = pool
    .run({ ...task, port: port2 } satisfies ParseTask, { transferList: [port2] as never })
    .catch((err: unknown) => {
      failure = err
      wake?.()
    })
  const stop = (): void => {
    try {
      port1.postMessage({ type: 'stop' } satisfies MainMessage)
    } catch {
      // The port is closed already: the worker is done.
    }
    wake?.()
  }
  signal?.addEventListener('abort', stop, { once: true })
  const next = async (): Promise<WorkerMessage> => {
    while (queue.length === 0) {
      if (signal?.aborted) return { type: 'end' }
      if (failure) throw failure
      await new Promise<void>((r) => (wake = r))
    }
    return queue.shift()!
  }
  const raise = (m: Extract<WorkerMessage, { type: 'error' }>): never => {
    throw m.code && m.code in importErrors.definitions
      ? importErrors.create(m.code as ImportErrorCode, { message: m.message, details: m.details })
      : new Error(m.message)
  }
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    signal?.removeEventListener('abort', stop)
    port1.postMessage({ type: 'stop' } satisfies MainMessage)
    port1.close()
    await run
    await pool.destroy()
  }
  const first = await next()
  if (first.type === 'error') {
    await close()
    raise(first)
  }
  const header = first.type === 'header' ? first.header : undefined
  async function* batches(): AsyncGenerator<Batch> {
    for (;;) {
      // Batches the worker parsed ahead are dropped on a pause: they were never checkpointed.
      if (signal?.aborted) return
      const m = await next()
      if (m.type === 'end') return
      if (m.type === 'error') raise(m)
      if (m.type === 'batch') {
        port1.postMessage({ type: 'ack', batchSize: batchSize() } satisfies MainMessage)
        yield m.batch
      }
    }
  }
  return { header, batches: batches(), close }
}

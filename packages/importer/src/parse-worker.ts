// Runs in a piscina worker thread: reads the source, parses and converts records, and streams
// batches to the main thread over a MessagePort, at most `credits` batches ahead of it.
import type { MessagePort } from 'node:worker_threads'
import { compileConverter } from './convert.js'
import type { ChunkInfo } from './job-store.js'
import { openSource } from './open-source.js'
import { readBatches, type Batch } from './read-batches.js'
import type { ResolvedSpec } from './spec.js'

export interface ParseTask {
  port: MessagePort
  spec: ResolvedSpec
  path: string
  chunk: ChunkInfo | null
  skip: number
  batchSize: number
  credits: number
}

export type WorkerMessage =
  | { type: 'header'; header: string[] | undefined }
  | { type: 'batch'; batch: Batch }
  | { type: 'end' }
  | { type: 'error'; message: string; code?: string; details?: unknown }

export type MainMessage = { type: 'ack'; batchSize: number } | { type: 'stop' }

export default async function parseSource(task: ParseTask): Promise<void> {
  const { port } = task
  let credits = task.credits
  let batchSize = task.batchSize
  let stopped = false
  // A stop (a pause or the end of the run) also interrupts the batch being parsed.
  const stopping = new AbortController()
  let wake: (() => void) | undefined
  port.on('message', (m: MainMessage) => {
    if (m.type === 'ack') {
      credits++
      batchSize = m.batchSize
    } else {
      stopped = true
      stopping.abort()
    }
    wake?.()
  })
  const source = await openSource(task.spec, task.path, task.chunk).catch((err: unknown) => {
    const e = err as { message?: string; code?: string; details?: unknown }
    port.postMessage({
      type: 'error',
      message: e.message ?? String(err),
      code: e.code,
      details: e.details,
    })
    return undefined
  })
  if (!source) return
  try {
    port.postMessage({ type: 'header', header: source.header } satisfies WorkerMessage)
    const converter = compileConverter(task.spec, source.header)
    for await (const batch of readBatches(source, converter, {
      skip: task.skip,
      batchSize: () => batchSize,
      maxBytes: task.spec.batch.maxBytes,
      signal: stopping.signal,
    })) {
      while (credits === 0 && !stopped) await new Promise<void>((r) => (wake = r))
      if (stopped) break
      credits--
      port.postMessage({ type: 'batch', batch } satisfies WorkerMessage)
    }
    if (!stopped) port.postMessage({ type: 'end' } satisfies WorkerMessage)
  } catch (err) {
    const e = err as { message?: string; code?: string; details?: unknown }
    port.postMessage({
      type: 'error',
      message: e.message ?? String(err),
      code: e.code,
      details: e.details,
    })
  } finally {
    await source.close().catch(() => {})
    port.close()
  }
}

// A TCP proxy in front of Strata that can lose answers: with `dropRate` > 0, a connection whose
// upstream starts answering is cut (both sides) before the client reads a byte of the answer —
// the request was processed and committed, the client only sees a broken connection.
import { createServer, connect, type Server, type Socket } from 'node:net'

export interface DropProxy {
  url: string
  /** Share of answers to cut, 0..1 (changeable at any time). */
  dropRate: number
  /** Answers cut so far. */
  readonly dropped: number
  /** Connections proxied so far. */
  readonly connections: number
  close(): Promise<void>
}

export async function startDropProxy(upstreamPort: () => number): Promise<DropProxy> {
  const sockets = new Set<Socket>()
  let dropped = 0
  let connections = 0
  const state = { dropRate: 0 }
  const server: Server = createServer((client) => {
    connections++
    const upstream = connect(upstreamPort(), '127.0.0.1')
    sockets.add(client)
    sockets.add(upstream)
    const cut = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', cut)
    upstream.on('error', cut)
    client.on('close', () => {
      sockets.delete(client)
      upstream.destroy()
    })
    upstream.on('close', () => {
      sockets.delete(upstream)
      client.end()
    })
    client.pipe(upstream)
    // Decided per answer: each chunk that starts an answer may be the one that is lost.
    let answering = false
    upstream.on('data', (chunk: Buffer) => {
      if (!answering && chunk.subarray(0, 5).toString() === 'HTTP/') {
        answering = true
        if (Math.random() < state.dropRate) {
          dropped++
          // RST rather than FIN: the client must not mistake it for a complete answer.
          client.resetAndDestroy()
          upstream.destroy()
          return
        }
      }
      if (!client.destroyed) client.write(chunk)
    })
    // Keep-alive: the next request on this connection is a new answer.
    client.on('data', () => {
      answering = false
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    get dropRate() {
      return state.dropRate
    },
    set dropRate(v: number) {
      state.dropRate = v
    },
    get dropped() {
      return dropped
    },
    get connections() {
      return connections
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

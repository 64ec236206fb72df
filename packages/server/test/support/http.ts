import { request as httpRequest } from 'node:http'
import type { FastifyInstance } from 'fastify'

export interface HttpAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  /** The body as JSON, or undefined when it is not JSON. */
  json: any
}

/**
 * The app listening on 127.0.0.1 (a free port), and a client that sends requests over real
 * HTTP exactly as given: the path is not normalised or re-encoded, the body is sent as is.
 */
export async function listenForTests(app: FastifyInstance): Promise<{
  base: string
  send(
    method: string,
    path: string,
    options?: { headers?: Record<string, string>; body?: string | object },
  ): Promise<HttpAnswer>
}> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const base = `http://127.0.0.1:${port}`
  const send = (
    method: string,
    path: string,
    options: { headers?: Record<string, string>; body?: string | object } = {},
  ) =>
    new Promise<HttpAnswer>((resolve, reject) => {
      const body =
        options.body === undefined
          ? undefined
          : typeof options.body === 'string'
            ? options.body
            : JSON.stringify(options.body)
      const headers: Record<string, string> = { ...options.headers }
      if (body !== undefined) headers['content-type'] ??= 'application/json'
      const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
        })
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end(body)
    })
  return { base, send }
}

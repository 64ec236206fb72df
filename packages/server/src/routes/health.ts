import type { FastifyInstance } from 'fastify'
import { serverErrors } from '../errors.js'
import { sendError } from '../plugins/errors.js'

/** `/healthz`: the process is alive. `/readyz`: every registered dependency answers in time. */
export default async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_request, reply) => {
    const checks = await Promise.all(
      app.readiness.map(async ({ name, check, timeoutMs = 2000 }) => {
        const started = performance.now()
        let timer: NodeJS.Timeout | undefined
        try {
          await Promise.race([
            check(),
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`no answer within ${timeoutMs} ms`)),
                timeoutMs,
              )
            }),
          ])
          return { name, ok: true, ms: Math.round(performance.now() - started) }
        } catch (err) {
          return {
            name,
            ok: false,
            ms: Math.round(performance.now() - started),
            error: (err as Error).message,
          }
        } finally {
          clearTimeout(timer)
        }
      }),
    )
    if (checks.every((c) => c.ok)) return { status: 'ready', checks }
    return sendError(reply, serverErrors.create('STRATA_NOT_READY', { details: { checks } }))
  })
}

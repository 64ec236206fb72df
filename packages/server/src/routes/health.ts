import { isStrataError } from '@strata/core'
import type { FastifyInstance } from 'fastify'
import { serverErrors } from '../errors.js'
import { sendError } from '../plugins/errors.js'

const TIMED_OUT = Symbol('timed out')

/**
 * `/healthz`: the process is alive. `/readyz`: every registered dependency answers in time;
 * with a read replica, its state (`replica`: up/down, lag in bytes and seconds, where
 * analytics read) is reported but does not decide readiness.
 * Unauthenticated: a failed check shows only its name and a code (`STRATA_DB_UNAVAILABLE`,
 * `timeout`, or `failed`); what the driver said (addresses, server messages) goes to the log
 * with the request id.
 */
export default async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (request, reply) => {
    const checks = await Promise.all(
      app.readiness.map(async ({ name, check, timeoutMs = 2000 }) => {
        const started = performance.now()
        let timer: NodeJS.Timeout | undefined
        try {
          await Promise.race([
            check(),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(TIMED_OUT), timeoutMs)
            }),
          ])
          return { name, ok: true, ms: Math.round(performance.now() - started) }
        } catch (err) {
          const error = err === TIMED_OUT ? 'timeout' : isStrataError(err) ? err.code : 'failed'
          request.log.warn(
            err === TIMED_OUT ? { check: name, timeoutMs } : { err, check: name },
            'readiness check failed',
          )
          return { name, ok: false, ms: Math.round(performance.now() - started), error }
        } finally {
          clearTimeout(timer)
        }
      }),
    )
    // The replica is reported, never required: while it is down or lagging, analytics read the
    // primary, so the service stays ready.
    const replica = app.services.replica?.state
    const extra = replica ? { replica } : {}
    if (checks.every((c) => c.ok)) return { status: 'ready', checks, ...extra }
    return sendError(
      reply,
      serverErrors.create('STRATA_NOT_READY', { details: { checks, ...extra } }),
    )
  })
}

import { parseArgs } from 'node:util'
import { createLogger } from '../../logger.js'
import { startService } from '../../service.js'
import type { Command } from '../command.js'
import { configOrReport } from '../config-or-exit.js'
import { interruptCounter } from '../interrupts.js'

const SHUTDOWN_GRACE_MS = 25_000 // under Kubernetes' default 30 s terminationGracePeriod

/**
 * The embedded quick start (no DATABASE_URL) listens on 127.0.0.1 unless HOST says otherwise: a
 * laptop's first `npm start` must not open the service (and its operator login) to the network.
 * With DATABASE_URL (a deployment) the configuration's default, 0.0.0.0, stays.
 */
export function withDefaultHost(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (!env.HOST && !env.DATABASE_URL) env.HOST = '127.0.0.1'
  return env
}

export const startCommand: Command = {
  name: 'start',
  summary: 'run the service (embedded PostgreSQL when DATABASE_URL is unset)',
  usage: `strata start [--port N] [--host H]

Runs the HTTP service. Configuration comes from the environment (README.md, Configuration):
DATABASE_URL (absent: embedded PostgreSQL under ./.strata/pg), REDIS_URL, PORT, HOST, ...
Without DATABASE_URL it listens on 127.0.0.1 only; HOST=0.0.0.0 (or --host 0.0.0.0) listens on
every interface.
SIGINT/SIGTERM stop it gracefully: stop accepting, drain, close the pool, stop embedded PostgreSQL.
In production run node on it directly, so the supervisor's signal reaches it:
  node packages/server/dist/cli/main.js start   (the image's CMD; README, Production)`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { port: { type: 'string' }, host: { type: 'string' } },
    })
    const env = withDefaultHost({ ...process.env })
    if (values.port) env.PORT = values.port
    if (values.host) env.HOST = values.host
    const config = configOrReport(env)
    if (!config) return 1
    const logger = createLogger(config)
    const service = await startService(config, logger)
    logger.info(`strata listening on ${service.url}`)
    logger.info(`dashboard: ${service.url}/dashboard/`)

    await new Promise<void>((resolve) => {
      let signalled = false
      // `npm start` forwards the terminal's SIGINT to this process, which got it already: that
      // copy must not turn a graceful stop into "again: exiting now".
      const press = interruptCounter()
      const onSignal = (signal: NodeJS.Signals) => {
        if (press() === undefined) return
        if (signalled) {
          logger.warn(`${signal} again: exiting now`)
          process.exit(1)
        }
        signalled = true
        logger.info(`${signal}: shutting down`)
        const force = setTimeout(() => {
          logger.error(`shutdown took longer than ${SHUTDOWN_GRACE_MS} ms: exiting`)
          process.exit(1)
        }, SHUTDOWN_GRACE_MS)
        force.unref()
        // Node closes only the keep-alive connections that are idle when the server closes; one
        // that finishes its request later (a load balancer's) would hold the drain open until
        // the client drops it, past the grace. Close each as soon as it goes idle.
        const idle = setInterval(() => service.app.server.closeIdleConnections(), 100)
        idle.unref()
        service
          .stop()
          .catch((err: unknown) => logger.error({ err }, 'error during shutdown'))
          .finally(() => {
            clearInterval(idle)
            resolve()
          })
      }
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)
    })
    logger.info('stopped')
    return 0
  },
}

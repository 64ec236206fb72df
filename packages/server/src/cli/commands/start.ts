import { parseArgs } from 'node:util'
import { createLogger } from '../../logger.js'
import { startService } from '../../service.js'
import type { Command } from '../command.js'
import { configOrReport } from '../config-or-exit.js'

const SHUTDOWN_GRACE_MS = 25_000 // under Kubernetes' default 30 s terminationGracePeriod

export const startCommand: Command = {
  name: 'start',
  summary: 'run the service (embedded PostgreSQL when DATABASE_URL is unset)',
  usage: `strata start [--port N] [--host H]

Runs the HTTP service. Configuration comes from the environment (README.md, Configuration):
DATABASE_URL (absent: embedded PostgreSQL under ./.strata/pg), REDIS_URL, PORT, HOST, ...
SIGINT/SIGTERM stop it gracefully: stop accepting, drain, close the pool, stop embedded PostgreSQL.
In production run node on it directly, so the supervisor's signal reaches it:
  node packages/server/dist/cli/main.js start   (the image's CMD; README, Production)`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { port: { type: 'string' }, host: { type: 'string' } },
    })
    const env = { ...process.env }
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
      const onSignal = (signal: NodeJS.Signals) => {
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
        service
          .stop()
          .catch((err: unknown) => logger.error({ err }, 'error during shutdown'))
          .finally(resolve)
      }
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)
    })
    logger.info('stopped')
    return 0
  },
}

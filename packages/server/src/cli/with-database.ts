import type { Database } from '@strata/pg'
import type { Logger } from 'pino'
import type { StrataConfig } from '../config.js'
import { createCliLogger } from '../logger.js'
import { openDatabase } from '../service.js'
import { configOrReport } from './config-or-exit.js'

export interface CliContext {
  config: StrataConfig
  /** Logs to stderr; stdout is the command's answer. */
  logger: Logger
  database: { db: Database; description: string }
}

/**
 * Runs a command against DATABASE_URL (or the embedded Postgres): configuration checked (exit 1
 * with one line per bad variable), database opened, and always closed afterwards.
 */
export async function withCliDatabase(fn: (ctx: CliContext) => Promise<number>): Promise<number> {
  const config = configOrReport()
  if (!config) return 1
  const logger = createCliLogger(config)
  const database = await openDatabase(config, logger)
  try {
    return await fn({ config, logger, database })
  } finally {
    await database.stop()
  }
}

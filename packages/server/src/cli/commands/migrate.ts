import { migrate, migrationStatus } from '@strata/pg'
import { parseArgs } from 'node:util'
import { migrationSets } from '../../migrations.js'
import type { Command } from '../command.js'
import { withCliDatabase } from '../with-database.js'

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply pending database migrations (--status to list them)',
  usage: `strata migrate [--status]

Applies every package's pending migrations to DATABASE_URL (or the embedded PostgreSQL), each in
its own transaction under an advisory lock, so concurrent runs apply each migration once.
--status  list applied and pending migrations without applying anything`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { status: { type: 'boolean', default: false } },
    })
    return withCliDatabase(async ({ logger, database }) => {
      process.stdout.write(`database: ${database.description}\n`)
      if (values.status) {
        const status = await migrationStatus(database.db, migrationSets)
        for (const m of status)
          process.stdout.write(`${m.state.padEnd(7)}  ${m.set}/${m.version}_${m.name}\n`)
        return 0
      }
      const applied = await migrate(database.db, migrationSets, { logger })
      for (const m of applied) process.stdout.write(`applied  ${m.set}/${m.version}_${m.name}\n`)
      process.stdout.write(
        applied.length ? `${applied.length} migration(s) applied\n` : 'database is up to date\n',
      )
      return 0
    })
  },
}

#!/usr/bin/env node
import { isStrataError } from '@strata/core'
import type { Command } from './command.js'
import { dbCommand, psqlCommand } from './commands/db.js'
import { doctorCommand } from './commands/doctor.js'
import { importCommand } from './commands/import.js'
import { migrateCommand } from './commands/migrate.js'
import { loadtestCommand } from './commands/loadtest.js'
import { keysCommand, projectsCommand } from './commands/projects.js'
import { seedCommand } from './commands/seed.js'
import { startCommand } from './commands/start.js'

// Every subcommand, in `strata --help` order. A new command is a file in commands/ plus a line here.
const COMMANDS: Command[] = [
  startCommand,
  migrateCommand,
  projectsCommand,
  keysCommand,
  importCommand,
  doctorCommand,
  seedCommand,
  loadtestCommand,
  dbCommand,
  psqlCommand,
]

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length))
  return [
    'strata — data layer and service for TypeScript backends on PostgreSQL and Redis',
    '',
    'usage: strata <command> [options]',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'strata <command> --help shows a command’s options.',
  ].join('\n')
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${help()}\n`)
    return name ? 0 : 1
  }
  const command = COMMANDS.find((c) => c.name === name)
  if (!command) {
    process.stderr.write(`strata: unknown command ${JSON.stringify(name)}\n\n${help()}\n`)
    return 1
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.usage}\n`)
    return 0
  }
  try {
    return await command.run(rest)
  } catch (err) {
    // Expected failures print one line with their code; only the unexpected get a stack.
    if (isStrataError(err)) {
      const cause = err.cause instanceof Error ? ` (cause: ${err.cause.message.trim()})` : ''
      process.stderr.write(`strata ${name}: ${err.code}: ${err.message}${cause}\n`)
    } else if (
      err instanceof TypeError &&
      (err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
    )
      process.stderr.write(`strata ${name}: ${err.message}\n${command.usage}\n`)
    else process.stderr.write(`strata ${name}: ${(err as Error)?.stack ?? String(err)}\n`)
    return 1
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`strata: ${String(err)}\n`)
    process.exitCode = 1
  },
)

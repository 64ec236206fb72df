import { parseArgs } from 'node:util'
import { ProjectStore, seedEvents } from '@strata/events'
import { migrate } from '@strata/pg'
import { migrationSets } from '../../migrations.js'
import type { Command } from '../command.js'
import { withCliDatabase } from '../with-database.js'

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value.replace(/_/g, ''))
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`)
  return n
}

export const seedCommand: Command = {
  name: 'seed',
  summary:
    'generate realistic demo/benchmark events through COPY (strata seed --events 1000000 --days 90)',
  usage: `strata seed [--events N] [--activities N] [--days D] [--users U] [--seed S] [--project <id>] [--json]

Writes N login events and N activities (--activities to differ) spread over the last D days into
one project with COPY, plus the hourly rollups, daily user sets and sessions the writer would
keep, in one transaction. The data is skewed like production: Zipf-distributed users, weighted
methods, devices and actions, a working-day curve with quieter weekends, and weekly
credential-stuffing bursts of failed logins. Without --project a new project is created and its
keys printed (shown once).
--events      login events (default 100000)
--activities  activity rows (default: --events)
--days        span ending now (default 90)
--users       distinct users (default events / 40)
--seed        PRNG seed: same options, same data (default 1)
--json        print {"project","keys"?,"logins","activities","sessions","ms"} only`,
  async run(argv) {
    let values
    try {
      values = parseArgs({
        args: argv,
        options: {
          events: { type: 'string' },
          activities: { type: 'string' },
          days: { type: 'string' },
          users: { type: 'string' },
          seed: { type: 'string' },
          project: { type: 'string' },
          json: { type: 'boolean', default: false },
        },
      }).values
    } catch (err) {
      process.stderr.write(`strata seed: ${(err as Error).message}\n`)
      return 1
    }
    let events: number, activities: number, days: number, seed: number, users: number | undefined
    try {
      events = positiveInt('events', values.events, 100_000)
      activities = positiveInt('activities', values.activities, events)
      days = positiveInt('days', values.days, 90)
      seed = positiveInt('seed', values.seed, 1)
      users = values.users === undefined ? undefined : positiveInt('users', values.users, 0)
      if (days < 1 || days > 730) throw new Error('--days must be between 1 and 730')
    } catch (err) {
      process.stderr.write(`strata seed: ${(err as Error).message}\n`)
      return 1
    }
    return withCliDatabase(async ({ config, logger, database }) => {
      if (config.migrateOnStart) await migrate(database.db, migrationSets, { logger })
      const store = new ProjectStore(database.db)
      let projectId = values.project
      let keys: { write: string; admin: string } | undefined
      if (projectId) {
        if (!(await store.getProject(projectId).catch(() => null))) {
          process.stderr.write(`strata seed: project ${projectId} not found\n`)
          return 1
        }
      } else {
        const created = await store.createProject(`demo-${new Date().toISOString().slice(0, 10)}`)
        projectId = created.project.id
        keys = created.keys
      }
      const tty = process.stderr.isTTY && !values.json
      const result = await seedEvents(database.db, {
        projectId,
        logins: events,
        activities,
        days,
        seed,
        ...(users ? { users } : {}),
        onProgress: (done, total) => {
          if (tty)
            process.stderr.write(`\rseeding ${done.toLocaleString()} / ${total.toLocaleString()}`)
        },
      })
      if (tty) process.stderr.write('\n')
      if (values.json)
        process.stdout.write(
          `${JSON.stringify({ project: projectId, ...(keys ? { keys } : {}), ...result })}\n`,
        )
      else {
        process.stdout.write(
          `project ${projectId}: ${result.logins} logins, ${result.activities} activities, ` +
            `${result.sessions} sessions over ${days} days in ${(result.ms / 1000).toFixed(1)} s\n`,
        )
        if (keys)
          process.stdout.write(
            `write key: ${keys.write}\nadmin key: ${keys.admin}\nKeys are shown only now; store them safely.\n`,
          )
      }
      return 0
    })
  },
}

import { parseArgs } from 'node:util'
import { ProjectStore, type KeyKind } from '@strata/events'
import { migrate } from '@strata/pg'
import { migrationSets } from '../../migrations.js'
import type { Command } from '../command.js'
import { withCliDatabase } from '../with-database.js'

async function withStore(fn: (store: ProjectStore) => Promise<number>): Promise<number> {
  return withCliDatabase(async ({ config, logger, database }) => {
    // Same rule as `strata start`: a fresh database gets its schema first.
    if (config.migrateOnStart) await migrate(database.db, migrationSets, { logger })
    return await fn(new ProjectStore(database.db))
  })
}

export const projectsCommand: Command = {
  name: 'projects',
  summary: 'create or list projects (tenants) and their first keys',
  usage: `strata projects create <name> [--json]
strata projects list [--json]

create  creates a project with one write key (ingestion) and one admin key (analytics);
        the keys are shown once. --json prints {"project":{...},"keys":{"write","admin"}}
        exactly as POST /v1/projects answers.
list    lists projects.`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { json: { type: 'boolean', default: false } },
    })
    const [sub, name] = positionals
    if (sub === 'create') {
      if (!name) {
        process.stderr.write('strata projects create: a project name is required\n')
        return 1
      }
      return withStore(async (store) => {
        const created = await store.createProject(name)
        if (values.json) process.stdout.write(`${JSON.stringify(created)}\n`)
        else
          process.stdout.write(
            `project ${created.project.name} (${created.project.id})\n` +
              `write key: ${created.keys.write}\nadmin key: ${created.keys.admin}\n` +
              'Keys are shown only now; store them safely.\n',
          )
        return 0
      })
    }
    if (sub === 'list') {
      return withStore(async (store) => {
        const projects = await store.listProjects()
        if (values.json)
          process.stdout.write(`${JSON.stringify({ items: projects, nextCursor: null })}\n`)
        else for (const p of projects) process.stdout.write(`${p.id}  ${p.name}\n`)
        return 0
      })
    }
    process.stderr.write(`strata projects: expected create or list\n`)
    return 1
  },
}

export const keysCommand: Command = {
  name: 'keys',
  summary: 'create or revoke API keys',
  usage: `strata keys create --project <id> --kind write|admin [--json]
strata keys revoke <keyId> [--json]`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        project: { type: 'string' },
        kind: { type: 'string', default: 'write' },
        json: { type: 'boolean', default: false },
      },
    })
    const [sub, id] = positionals
    if (sub === 'create') {
      const kind = values.kind as KeyKind
      // Each problem said as it is: an unknown kind is not a missing --project.
      if (kind !== 'write' && kind !== 'admin') {
        process.stderr.write(
          `strata keys create: --kind ${JSON.stringify(values.kind)} is not a key kind; kinds: write (ingestion), admin (analytics)\n`,
        )
        return 1
      }
      if (!values.project) {
        process.stderr.write('strata keys create: --project <id> is required\n')
        return 1
      }
      return withStore(async (store) => {
        const created = await store.createKey(values.project!, kind)
        process.stdout.write(
          values.json ? `${JSON.stringify(created)}\n` : `${created.key.id}  ${created.secret}\n`,
        )
        return 0
      })
    }
    if (sub === 'revoke' && id) {
      return withStore(async (store) => {
        const key = await store.revokeKey(id)
        process.stdout.write(values.json ? `${JSON.stringify({ key })}\n` : `revoked ${key.id}\n`)
        return 0
      })
    }
    process.stderr.write('strata keys: expected create or revoke <keyId>\n')
    return 1
  },
}

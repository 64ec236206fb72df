import { eventsMigrations } from '@strata/events'
import type { Database } from '@strata/pg'
import Fastify, { type FastifyInstance } from 'fastify'
import pino from 'pino'
import type { TestDatabase } from '../../../test/support/pg.js'
import { buildApp } from '../src/app.js'
import type { StrataConfig } from '../src/config.js'
import errorsPlugin from '../src/plugins/errors.js'
import eventsApi, { type EventsApiOptions } from '../src/routes/v1/events-api.js'
import { testApp } from './app-support.js'

export const ADMIN_TOKEN = 'test-operator-token-0123456789'

export interface IngestFixture {
  tdb: TestDatabase
  db: Database
  app: FastifyInstance
  writeKey: string
  adminKey: string
  projectId: string
  close(): Promise<void>
}

/** A migrated database, an app (the real buildApp unless `options` are given) and a project. */
export async function ingestFixture(
  prefix: string,
  options?: EventsApiOptions,
  beforeReady?: (app: FastifyInstance) => void,
  configOverrides: Partial<StrataConfig> = {},
): Promise<IngestFixture> {
  const fx = await testApp(prefix, {
    poolMax: 6,
    migrations: [eventsMigrations],
    config: { adminToken: ADMIN_TOKEN, ...configOverrides },
    build: (db, config) => buildTestApp(db, config, options),
    ...(beforeReady ? { extend: beforeReady } : {}),
  })
  const { app } = fx
  const res = await app.inject({
    method: 'POST',
    url: '/v1/projects',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    payload: { name: prefix },
  })
  if (res.statusCode !== 201) throw new Error(`project creation failed: ${res.body}`)
  const body = res.json() as { project: { id: string }; keys: { write: string; admin: string } }
  return {
    ...fx,
    writeKey: body.keys.write,
    adminKey: body.keys.admin,
    projectId: body.project.id,
  }
}

export async function count(db: Database, sql: string, params: unknown[] = []): Promise<number> {
  const res = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params)
  return res.rows[0]!.n
}

/** The app on an existing database: buildApp, or (with options) the events plugin alone. */
export async function buildTestApp(
  db: Database,
  config: StrataConfig,
  options?: EventsApiOptions,
): Promise<FastifyInstance> {
  if (!options) return buildApp(config, { db, logger: pino({ level: 'silent' }) })
  // Same error handler and decorations as buildApp, with the events plugin's options exposed.
  const app = Fastify({ logger: false, bodyLimit: 512_000 })
  app.decorate('config', config)
  app.decorate('db', db)
  await app.register(errorsPlugin)
  await app.register(eventsApi, options)
  return app
}

import { eventsMigrations } from '@strata/events'
import type { Database } from '@strata/pg'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import pino from 'pino'
import type { TestDatabase } from '../../../../test/support/pg.js'
import { buildApp, type AppOverrides } from '../../src/app.js'
import type { StrataConfig } from '../../src/config.js'
import { testApp } from './test-app.js'

export const ADMIN_TOKEN = 'test-operator-token-0123456789'

/** buildApp's overrides (writer, validator, sessions, rateLimit, ...), and a Redis client for the rate limit. */
export interface IngestTestOptions extends AppOverrides {
  redis?: Redis
}

export interface IngestFixture {
  tdb: TestDatabase
  db: Database
  app: FastifyInstance
  writeKey: string
  adminKey: string
  projectId: string
  close(): Promise<void>
}

/** A migrated database, an app (buildApp with `options`) and a project. */
export async function ingestFixture(
  prefix: string,
  options?: IngestTestOptions,
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

/** The app on an existing database: buildApp, silent, with `options` as its overrides. */
export async function buildTestApp(
  db: Database,
  config: StrataConfig,
  options: IngestTestOptions = {},
): Promise<FastifyInstance> {
  const { redis, ...overrides } = options
  return buildApp(config, {
    db,
    logger: pino({ level: 'silent' }),
    ...(redis ? { redis } : {}),
    overrides,
  })
}

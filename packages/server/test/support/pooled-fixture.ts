import type { Database } from '@strata/pg'
import type {} from '../../src/plugins/services.js'
import type { Pgbouncer } from '../../../../test/support/pgbouncer.js'
import { migrationSets } from '../../src/migrations.js'
import type { Services } from '../../src/services.js'
import { ADMIN_TOKEN, buildTestApp, type IngestTestOptions } from './ingest-fixture.js'
import { testApp, type TestApp } from './test-app.js'

/** Labels of the statements, transactions and client loans the app asked the direct pool for. */
export type DirectCalls = string[]

/**
 * `db` with every query/transaction/withClient label recorded: what the app still runs on
 * DATABASE_URL. The test's own statements go to the unwrapped pool and are not recorded.
 */
function recordLabels(db: Database, calls: DirectCalls): Database {
  const label = (o: unknown) => (o as { label?: string } | undefined)?.label ?? '(no label)'
  return new Proxy(db, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver)
      if (typeof v !== 'function') return v
      const fn = v as (...args: unknown[]) => unknown
      if (prop === 'query')
        return (...args: unknown[]) => {
          calls.push(label(args[2]))
          return fn.apply(target, args)
        }
      if (prop === 'transaction' || prop === 'withClient')
        return (...args: unknown[]) => {
          calls.push(label(args[1]))
          return fn.apply(target, args)
        }
      return fn.bind(target)
    },
  })
}

export interface PooledFixture extends TestApp {
  services: Services
  /** The app's pool on DATABASE_URL_POOLED. */
  pooledDb: Database
  /** Labels the app used on the direct pool (DATABASE_URL). */
  direct: DirectCalls
  writeKey: string
  adminKey: string
  projectId: string
}

/**
 * A database with every migration set and an app whose DATABASE_URL_POOLED goes through `bouncer` to it, plus
 * a project. `pooledQuery` is added to the pooled URL (e.g. `pool_max=100`).
 */
export async function pooledFixture(
  prefix: string,
  bouncer: Pgbouncer,
  options: IngestTestOptions = {},
  pooledQuery = '',
): Promise<PooledFixture> {
  const direct: DirectCalls = []
  const fx = await testApp(prefix, {
    poolMax: 6,
    // Every set, as `strata start` applies them: imports (on the direct pool) work too.
    migrations: migrationSets,
    config: { adminToken: ADMIN_TOKEN },
    build: (db, config) =>
      buildTestApp(
        recordLabels(db, direct),
        {
          ...config,
          databaseUrlPooled: `${bouncer.urlFor(config.databaseUrl!)}${pooledQuery ? `?${pooledQuery}` : ''}`,
        },
        options,
      ),
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
  const { services } = app
  if (!services.pooledDb) throw new Error('the app built no pool on DATABASE_URL_POOLED')
  return {
    ...fx,
    services,
    pooledDb: services.pooledDb,
    direct,
    writeKey: body.keys.write,
    adminKey: body.keys.admin,
    projectId: body.project.id,
  }
}

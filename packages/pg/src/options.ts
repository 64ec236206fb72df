import { parseDuration, silentLogger } from '@strata/core'
import type { Duration, Logger } from '@strata/core'
import type pg from 'pg'
import type { Registry } from 'prom-client'
import type { AdvisorOptions } from './advisor/index-advisor.js'
import { pgErrors } from './errors.js'
import type { AutoTerminateOptions, HealthOptions } from './health/session-health.js'
import type { MonitorOptions } from './monitor/query-monitor.js'
import type { StatementsOptions } from './statements/statement-stats.js'

export interface PoolOptions {
  /** Most connections the pool opens. @defaultValue 10 */
  max?: number
  /** Idle connections kept open (pg-pool does not close below this). @defaultValue 0 */
  min?: number
  /** Close a connection idle this long. @defaultValue 30000 (30 s) */
  idleTimeoutMs?: Duration
  /** Longest wait for a pool connection (queueing + connecting) before STRATA_DB_TIMEOUT. @defaultValue 5000 */
  acquireTimeoutMs?: Duration
  /** Server-side `statement_timeout`; 0 disables. @defaultValue 30000 */
  statementTimeoutMs?: Duration
  /** Server-side `idle_in_transaction_session_timeout`; 0 disables. @defaultValue 60000 */
  idleInTransactionTimeoutMs?: Duration
  /**
   * Client-side read timeout per query (pg's `query_timeout`): the backstop when the server does
   * not answer at all (network partition, SIGSTOPped backend). 0 disables.
   * @defaultValue statementTimeoutMs + 5000 (0 when statementTimeoutMs is 0)
   */
  queryTimeoutMs?: Duration
  /** Recycle connections older than this (helps behind load balancers); 0 = never. @defaultValue 0 */
  maxLifetimeMs?: Duration
}

export interface DatabaseOptions {
  /** Connection string. @defaultValue 'postgres://postgres@127.0.0.1:5432/postgres' */
  url?: string
  pool?: PoolOptions
  /** `application_name` shown in pg_stat_activity. @defaultValue 'strata' */
  applicationName?: string
  /**
   * Connecting through PgBouncer in transaction mode. PgBouncer rejects unknown startup
   * parameters, and a session `SET` would leak to whichever client gets that server connection
   * next, so in this mode statement/idle-in-transaction timeouts are not sent at connect time;
   * transactions apply `SET LOCAL statement_timeout` instead (transaction-scoped, safe), and the
   * server-side defaults should come from `ALTER ROLE ... SET statement_timeout`. The client-side
   * query timeout still applies. Auto-enabled when the URL has `?pgbouncer=true`.
   * @defaultValue false
   */
  pgbouncer?: boolean
  /** Verify connectivity in `createDatabase` (fail fast) and warm `min` connections. @defaultValue true */
  connect?: boolean
  /** Name of this pool in metrics (`pool_name` label). @defaultValue applicationName */
  name?: string
  metrics?: {
    /** Registry for the db_client_* metrics; shared registries are fine (metrics are reused). @defaultValue a new Registry */
    registry?: Registry
  }
  /** The query monitor (`db.monitor`); `false` turns it off. */
  monitor?: MonitorOptions | false
  /** Leak detection, long-running sessions, optional automatic cancel/terminate (`db.health`). */
  health?: HealthOptions
  /** pg_stat_statements reading and history (`db.statements`). */
  statements?: StatementsOptions
  /** Index advisor (`db.advisor`). */
  advisor?: AdvisorOptions
  logger?: Logger
  /** pg Client class for the pool (pg-native's, or a test double as in the CPU benchmark). @defaultValue pg.Client */
  Client?: typeof pg.Client
}

/** All defaults in one place (ms). */
export const DEFAULTS = Object.freeze({
  applicationName: 'strata',
  max: 10,
  min: 0,
  idleTimeoutMs: 30_000, // 30 s
  acquireTimeoutMs: 5_000, // 5 s
  statementTimeoutMs: 30_000, // 30 s
  idleInTransactionTimeoutMs: 60_000, // 60 s
  queryTimeoutMarginMs: 5_000, // client backstop = statement timeout + 5 s
  maxLifetimeMs: 0,
  url: 'postgres://postgres@127.0.0.1:5432/postgres',
})

/** Defaults of the observability parts (monitor, health, statements, advisor); ms. */
export const OBSERVABILITY_DEFAULTS = Object.freeze({
  monitor: Object.freeze({
    slowQueryMs: 100,
    maxStatements: 500,
    maxLabels: 200,
    recentSize: 100,
    slowLogSize: 100,
    windowMs: 60_000,
  }),
  health: Object.freeze({
    leakThresholdMs: 30_000,
    leakStacks: false,
    longRunningMs: 5_000,
    autoTerminate: Object.freeze({
      longRunningMs: 0,
      idleInTransactionMs: 0,
      action: 'cancel' as 'cancel' | 'terminate',
      intervalMs: 10_000,
    }),
  }),
  statements: Object.freeze({
    createExtension: true,
    sampleIntervalMs: 60_000,
    regressionFactor: 2,
  }),
  advisor: Object.freeze({
    minCost: 100,
    minImprovement: 2,
    minTableRows: 10_000,
    indexUsageTarget: 0.95,
    maxStatements: 20,
  }),
})

export interface ResolvedObservability {
  monitor: Required<Omit<MonitorOptions, 'enabled'>> & { enabled: boolean }
  health: Required<Omit<HealthOptions, 'autoTerminate'>> & {
    autoTerminate: Required<AutoTerminateOptions>
  }
  statements: Required<StatementsOptions>
  advisor: Required<AdvisorOptions>
}

export interface ResolvedOptions {
  url: string
  applicationName: string
  name: string
  pgbouncer: boolean
  connect: boolean
  max: number
  min: number
  idleTimeoutMs: number
  acquireTimeoutMs: number
  statementTimeoutMs: number
  idleInTransactionTimeoutMs: number
  queryTimeoutMs: number
  maxLifetimeMs: number
  logger: Logger
  registry: Registry | undefined
  Client: typeof pg.Client | undefined
  observability: ResolvedObservability
}

/**
 * Environment variable per option, read only by `databaseOptionsFromEnv` (the server's
 * configuration reads the same names). URL query parameters use the Postgres names
 * (statement_timeout, application_name, ...).
 */
export const ENV = Object.freeze({
  url: 'DATABASE_URL',
  applicationName: 'PGAPPNAME',
  max: 'DATABASE_POOL_MAX',
  min: 'DATABASE_POOL_MIN',
  idleTimeoutMs: 'DATABASE_IDLE_TIMEOUT',
  acquireTimeoutMs: 'DATABASE_ACQUIRE_TIMEOUT',
  statementTimeoutMs: 'DATABASE_STATEMENT_TIMEOUT',
  idleInTransactionTimeoutMs: 'DATABASE_IDLE_IN_TRANSACTION_TIMEOUT',
  queryTimeoutMs: 'DATABASE_QUERY_TIMEOUT',
  slowQueryMs: 'SLOW_QUERY_THRESHOLD_MS',
  leakThresholdMs: 'DATABASE_LEAK_THRESHOLD',
  leakStacks: 'DATABASE_LEAK_STACKS',
})

// URL query parameter names (libpq / pg-connection-string spelling) for each option.
const URL_PARAM = {
  applicationName: 'application_name',
  max: 'pool_max',
  min: 'pool_min',
  acquireTimeoutMs: 'connect_timeout', // libpq's is seconds; see below
  statementTimeoutMs: 'statement_timeout',
  idleInTransactionTimeoutMs: 'idle_in_transaction_session_timeout',
  queryTimeoutMs: 'query_timeout',
} as const

function invalid(name: string, value: unknown, expected: string): never {
  throw pgErrors.create('STRATA_DB_INVALID_CONFIG', {
    message: `${name}: expected ${expected}, got ${JSON.stringify(value)}`,
    details: { name, value },
  })
}

function toInt(name: string, value: string | number, min: number): number {
  const n = typeof value === 'number' ? value : Number(value)
  if (!Number.isInteger(n) || n < min) invalid(name, value, `an integer ≥ ${min}`)
  return n
}

function toMs(name: string, value: Duration): number {
  try {
    return parseDuration(value, name)
  } catch {
    return invalid(name, value, 'a duration such as 250ms, 30s or 5m')
  }
}

/**
 * Resolves options once: explicit option → URL query parameter → default. The environment is not
 * read here; `databaseOptionsFromEnv` turns it into explicit options for callers who want that.
 */
export function resolveOptions(options: DatabaseOptions = {}): Readonly<ResolvedOptions> {
  const url = options.url ?? DEFAULTS.url
  let query: URLSearchParams
  try {
    query = new URL(url).searchParams
  } catch {
    return invalid('url', redactUrl(url), 'a postgres:// URL')
  }
  const pool = options.pool ?? {}

  // Each returns [value, source name for error messages] from the first layer that has it.
  const pick = <K extends keyof typeof URL_PARAM>(
    key: K,
    explicit: Duration | string | undefined,
  ): [Duration | string, string] | undefined => {
    if (explicit !== undefined) return [explicit, `options.${key}`]
    const p = URL_PARAM[key]
    const fromUrl = query.get(p)
    if (fromUrl !== null && fromUrl !== '') {
      // libpq's connect_timeout is in seconds.
      return [p === 'connect_timeout' ? Number(fromUrl) * 1000 : fromUrl, `url ${p}`]
    }
    return undefined
  }
  const int = (key: 'max' | 'min', explicit: number | undefined, def: number, min: number) => {
    const v = pick(key, explicit)
    return v ? toInt(v[1], v[0] as string | number, min) : def
  }
  const ms = (key: keyof typeof URL_PARAM, explicit: Duration | undefined, def: number) => {
    const v = pick(key, explicit)
    return v ? toMs(v[1], v[0]) : def
  }

  const applicationName = String(
    pick('applicationName', options.applicationName)?.[0] ?? DEFAULTS.applicationName,
  )
  const max = int('max', pool.max, DEFAULTS.max, 1)
  const min = int('min', pool.min, DEFAULTS.min, 0)
  if (min > max) invalid('pool.min', min, `a value ≤ pool.max (${max})`)
  const statementTimeoutMs = ms(
    'statementTimeoutMs',
    pool.statementTimeoutMs,
    DEFAULTS.statementTimeoutMs,
  )
  const queryTimeoutMs = ms(
    'queryTimeoutMs',
    pool.queryTimeoutMs,
    statementTimeoutMs === 0 ? 0 : statementTimeoutMs + DEFAULTS.queryTimeoutMarginMs,
  )
  return Object.freeze({
    url,
    applicationName,
    name: options.name ?? applicationName,
    pgbouncer: options.pgbouncer ?? query.get('pgbouncer') === 'true',
    connect: options.connect ?? true,
    max,
    min,
    idleTimeoutMs:
      pool.idleTimeoutMs === undefined
        ? DEFAULTS.idleTimeoutMs
        : toMs('options.idleTimeoutMs', pool.idleTimeoutMs),
    acquireTimeoutMs: ms('acquireTimeoutMs', pool.acquireTimeoutMs, DEFAULTS.acquireTimeoutMs),
    statementTimeoutMs,
    idleInTransactionTimeoutMs: ms(
      'idleInTransactionTimeoutMs',
      pool.idleInTransactionTimeoutMs,
      DEFAULTS.idleInTransactionTimeoutMs,
    ),
    queryTimeoutMs,
    maxLifetimeMs:
      pool.maxLifetimeMs === undefined
        ? DEFAULTS.maxLifetimeMs
        : toMs('pool.maxLifetimeMs', pool.maxLifetimeMs),
    logger: options.logger ?? silentLogger,
    registry: options.metrics?.registry,
    Client: options.Client,
    observability: resolveObservability(options),
  })
}

function resolveObservability(options: DatabaseOptions): ResolvedObservability {
  const D = OBSERVABILITY_DEFAULTS
  const msOf = (name: string, v: Duration | undefined, def: number): number =>
    v === undefined ? def : toMs(name, v)
  const m = options.monitor === false ? {} : (options.monitor ?? {})
  const h = options.health ?? {}
  const at = h.autoTerminate ?? {}
  const action = at.action ?? D.health.autoTerminate.action
  if (action !== 'cancel' && action !== 'terminate')
    invalid('health.autoTerminate.action', action, "'cancel' or 'terminate'")
  const st = options.statements ?? {}
  const ad = options.advisor ?? {}
  return {
    monitor: {
      enabled: options.monitor !== false && m.enabled !== false,
      slowQueryMs: msOf('monitor.slowQueryMs', m.slowQueryMs, D.monitor.slowQueryMs),
      maxStatements: toInt('monitor.maxStatements', m.maxStatements ?? D.monitor.maxStatements, 1),
      maxLabels: toInt('monitor.maxLabels', m.maxLabels ?? D.monitor.maxLabels, 1),
      recentSize: toInt('monitor.recentSize', m.recentSize ?? D.monitor.recentSize, 1),
      slowLogSize: toInt('monitor.slowLogSize', m.slowLogSize ?? D.monitor.slowLogSize, 1),
      windowMs: msOf('monitor.windowMs', m.windowMs, D.monitor.windowMs),
    },
    health: {
      leakThresholdMs: msOf('health.leakThresholdMs', h.leakThresholdMs, D.health.leakThresholdMs),
      leakStacks: h.leakStacks ?? D.health.leakStacks,
      longRunningMs: msOf('health.longRunningMs', h.longRunningMs, D.health.longRunningMs),
      autoTerminate: {
        longRunningMs: msOf(
          'health.autoTerminate.longRunningMs',
          at.longRunningMs,
          D.health.autoTerminate.longRunningMs,
        ),
        idleInTransactionMs: msOf(
          'health.autoTerminate.idleInTransactionMs',
          at.idleInTransactionMs,
          D.health.autoTerminate.idleInTransactionMs,
        ),
        action,
        intervalMs: msOf(
          'health.autoTerminate.intervalMs',
          at.intervalMs,
          D.health.autoTerminate.intervalMs,
        ),
      },
    },
    statements: {
      createExtension: st.createExtension ?? D.statements.createExtension,
      sampleIntervalMs: msOf(
        'statements.sampleIntervalMs',
        st.sampleIntervalMs,
        D.statements.sampleIntervalMs,
      ),
      regressionFactor: st.regressionFactor ?? D.statements.regressionFactor,
    },
    advisor: {
      minCost: ad.minCost ?? D.advisor.minCost,
      minImprovement: ad.minImprovement ?? D.advisor.minImprovement,
      minTableRows: ad.minTableRows ?? D.advisor.minTableRows,
      indexUsageTarget: ad.indexUsageTarget ?? D.advisor.indexUsageTarget,
      maxStatements: ad.maxStatements ?? D.advisor.maxStatements,
    },
  }
}

/**
 * Reads the `ENV` variables into explicit options, for library users who configure the pool
 * through the environment; `createDatabase` itself never reads it. Unset or empty variables are
 * left out, so pg's defaults (and the URL's query parameters) still apply to them; set ones are
 * explicit options and win over the URL's. Throws STRATA_DB_INVALID_CONFIG naming the variable.
 *
 * ### Examples
 * ```ts
 * const fromEnv = databaseOptionsFromEnv()
 * const db = await createDatabase({ ...fromEnv, pool: { ...fromEnv.pool, max: 20 }, logger })
 * ```
 */
export function databaseOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): DatabaseOptions {
  const read = (name: string): string | undefined =>
    env[name] === undefined || env[name] === '' ? undefined : env[name]
  const int = (name: string, min: number) => {
    const v = read(name)
    return v === undefined ? undefined : toInt(name, v, min)
  }
  const ms = (name: string) => {
    const v = read(name)
    return v === undefined ? undefined : toMs(name, v)
  }
  const stacks = read(ENV.leakStacks)
  if (stacks !== undefined && !/^(true|false|1|0)$/i.test(stacks))
    invalid(ENV.leakStacks, stacks, 'true or false')
  const url = read(ENV.url)
  if (url !== undefined && !URL.canParse(url)) invalid(ENV.url, redactUrl(url), 'a postgres:// URL')
  const defined = <T extends object>(o: T): Partial<T> =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
  return defined({
    url,
    applicationName: read(ENV.applicationName),
    pool: defined({
      max: int(ENV.max, 1),
      min: int(ENV.min, 0),
      idleTimeoutMs: ms(ENV.idleTimeoutMs),
      acquireTimeoutMs: ms(ENV.acquireTimeoutMs),
      statementTimeoutMs: ms(ENV.statementTimeoutMs),
      idleInTransactionTimeoutMs: ms(ENV.idleInTransactionTimeoutMs),
      queryTimeoutMs: ms(ENV.queryTimeoutMs),
    }),
    monitor: defined({ slowQueryMs: ms(ENV.slowQueryMs) }),
    health: defined({
      leakThresholdMs: ms(ENV.leakThresholdMs),
      leakStacks: stacks === undefined ? undefined : /^(true|1)$/i.test(stacks),
    }),
  })
}

/** The URL with its password replaced by `***`, safe for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return url.replace(/:\/\/([^:/@]+):[^@]*@/, '://$1:***@')
  }
}

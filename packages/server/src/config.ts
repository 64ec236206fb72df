import { parseDuration, parseRedisTarget } from '@strata/core'
import { DATABASE_DEFAULTS, type DatabaseOptions } from '@strata/pg'
import { z } from 'zod'
import { serverErrors } from './errors.js'

/**
 * Service configuration, read from the environment (names as in DESIGN.md). The only reader of
 * the environment when Strata runs as a service: packages get explicit options from it. Every
 * invalid variable yields one line naming it; all lines are reported together, before anything
 * starts.
 */
export interface StrataConfig {
  /** Absent: an embedded PostgreSQL is started under `${dataDir}/pg`. */
  databaseUrl: string | undefined
  /**
   * PgBouncer (transaction mode) in front of the same database: ingest flushes, key lookups,
   * sessions and analytics (without DATABASE_READ_URL) use a second pool on it; everything that
   * needs a session of its own stays on `databaseUrl`. Absent: everything uses `databaseUrl`.
   */
  databaseUrlPooled: string | undefined
  /** Read replica for analytics, when set. */
  databaseReadUrl: string | undefined
  /**
   * Replication lag (ms) past which analytics read the primary instead of the replica
   * (STRATA_REPLICA_MAX_LAG). @defaultValue 10000 (10 s)
   */
  replicaMaxLagMs: number
  /**
   * Absent: the cache is in-process only (no L2, no invalidation bus between instances) and the
   * ingest rate-limit counters are per instance.
   */
  redisUrl: string | undefined
  /** @defaultValue '0.0.0.0' */
  host: string
  /** @defaultValue 3000 */
  port: number
  adminToken: string | undefined
  /** A statement slower than this (ms) counts as slow in the query monitor and is logged. @defaultValue 100 */
  slowQueryThresholdMs: number
  /** `application_name` of the pool's sessions (PGAPPNAME). @defaultValue 'strata' */
  databaseApplicationName: string | undefined
  /**
   * Pool sizing and timeouts for @strata/pg, in ms; an unset field keeps pg's default
   * (`DATABASE_DEFAULTS`) or the DATABASE_URL query parameter.
   */
  databasePool: DatabasePoolConfig
  /** A client checked out longer than this (ms) is reported as leaked (DATABASE_LEAK_THRESHOLD). @defaultValue 30000 */
  databaseLeakThresholdMs: number | undefined
  /** Record where each client was checked out, for leak reports (DATABASE_LEAK_STACKS). @defaultValue false */
  databaseLeakStacks: boolean | undefined
  /** @defaultValue 'info' */
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** Where embedded Postgres data and the generated admin token live. @defaultValue './.strata' */
  dataDir: string
  /** Apply pending migrations on start. @defaultValue true */
  migrateOnStart: boolean
  /** Trusted proxies for the client IP (Fastify trustProxy): false, true, a hop count or a CIDR list. */
  trustProxy: boolean | number | string[]
  /** Server-side import sources must live under this directory. @defaultValue `${dataDir}/imports` */
  importDir: string
  /**
   * How long the upload of a failed or paused import job is kept so that the job can resume
   * (STRATA_IMPORT_UPLOAD_RETENTION, ms); a completed or cancelled job's upload is deleted when
   * it ends. @defaultValue 86400000 (24 h)
   */
  importUploadRetentionMs: number
  /**
   * Bearer token `/metrics` requires (STRATA_METRICS_TOKEN, ≥ 16 characters); absent, /metrics
   * is open.
   */
  metricsToken: string | undefined
  /**
   * Folder of the built dashboard served at /dashboard (STRATA_DASHBOARD_DIR).
   * @defaultValue the repository's packages/dashboard/dist
   */
  dashboardDir: string | undefined
  /** Longest accepted analytics range in ms (STRATA_ANALYTICS_MAX_RANGE). @defaultValue 400 days */
  analyticsMaxRangeMs: number | undefined
  /** Cache TTLs in ms by area, from CACHE_TTL_<AREA> (e.g. CACHE_TTL_ANALYTICS=10m). */
  cacheTtls: Record<string, number>
  /** POST target for performance alert transitions (STRATA_ALERT_WEBHOOK_URL). */
  alertWebhookUrl: string | undefined
  /**
   * Failed authentications (401/403) per client address per window before its requests get
   * 429 (STRATA_AUTH_FAILURE_LIMIT, 0: no limit; STRATA_AUTH_FAILURE_WINDOW).
   * @defaultValue { max: 50, windowMs: 60000 }
   */
  authFailureLimit: { max: number; windowMs: number }
  /**
   * Rate limits by route class, from STRATA_RATE_LIMIT_<INGEST|ANALYTICS|IMPORTS|PERFORMANCE>
   * (`<max>/<window>`, or `off`): ingestion per project, the others per key. Unset: the
   * defaults of plugins/rate-limit.ts.
   */
  rateLimits: Partial<
    Record<'ingest' | 'analytics' | 'imports' | 'performance', RateLimitSetting | false>
  >
  /** Alert threshold overrides from STRATA_ALERT_* (see docs/guides/performance.md). */
  alertThresholds: {
    slowQueryShare?: number
    queryP95Ms?: number
    poolUtilization?: number
    cacheHitRate?: number
    eventLoopP99Ms?: number
    heapUsedRatio?: number
  }
}

/** A rate limit: `max` requests per `timeWindow` ms. */
export interface RateLimitSetting {
  max: number
  timeWindow: number
}

/** Pool settings from the environment; each unset field keeps @strata/pg's default. */
export interface DatabasePoolConfig {
  /** DATABASE_POOL_MAX. @defaultValue 10 */
  max?: number
  /** DATABASE_POOL_MIN. @defaultValue 0 */
  min?: number
  /** DATABASE_IDLE_TIMEOUT. @defaultValue 30000 (30 s) */
  idleTimeoutMs?: number
  /** DATABASE_ACQUIRE_TIMEOUT. @defaultValue 5000 (5 s) */
  acquireTimeoutMs?: number
  /** DATABASE_STATEMENT_TIMEOUT; 0 disables. @defaultValue 30000 (30 s) */
  statementTimeoutMs?: number
  /** DATABASE_IDLE_IN_TRANSACTION_TIMEOUT; 0 disables. @defaultValue 60000 (60 s) */
  idleInTransactionTimeoutMs?: number
  /** DATABASE_QUERY_TIMEOUT (client side); 0 disables. @defaultValue statement timeout + 5 s */
  queryTimeoutMs?: number
}

const url = (protocols: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return protocols.includes(new URL(v).protocol)
      } catch {
        return false
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  )

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^\d+$/, { message: 'must be a whole number' })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { message: `must be ≥ ${min}` })
        .max(max, { message: `must be ≤ ${max}` }),
    )

const fraction = z
  .string()
  .regex(/^(0(\.\d+)?|1(\.0+)?)$/, { message: 'must be a number from 0 to 1' })
  .transform(Number)

const bool = z
  .string()
  .transform((v) => v.trim().toLowerCase())
  .pipe(
    z.enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'], {
      message: 'must be true or false',
    }),
  )
  .transform((v) => ['1', 'true', 'yes', 'on'].includes(v))

const redisUrl = z.string().superRefine((v, ctx) => {
  try {
    parseRedisTarget(v)
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      message: `${(err as Error).message}; use redis://host:port, rediss://…, redis+cluster://h1:p1,h2:p2 or a comma list of host:port`,
    })
  }
})

// Timeouts: 0 is allowed (disables), a bare number is ms, as @strata/pg accepts them.
const ms = z.string().transform((v, ctx) => {
  try {
    return parseDuration(v)
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a duration like 250ms, 30s or 5m' })
    return z.NEVER
  }
})

const duration = z.string().transform((v, ctx) => {
  try {
    const ms = parseDuration(v)
    if (ms > 0) return ms
  } catch {
    // reported below
  }
  ctx.addIssue({ code: 'custom', message: 'must be a positive duration like 90d, 12h or 30m' })
  return z.NEVER
})

// `<max>/<window>` (e.g. 600/1m) or `off`.
const rateLimit = z.string().transform((v, ctx) => {
  if (v.trim().toLowerCase() === 'off') return false as const
  const m = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(v)
  try {
    const timeWindow = m ? parseDuration(m[2]!) : 0
    if (m && Number(m[1]) > 0 && timeWindow > 0) return { max: Number(m[1]), timeWindow }
  } catch {
    // reported below
  }
  ctx.addIssue({ code: 'custom', message: 'must be <max>/<window> like 600/1m, or off' })
  return z.NEVER
})

const schema = z.object({
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  DATABASE_URL_POOLED: url(['postgres:', 'postgresql:']).optional(),
  DATABASE_READ_URL: url(['postgres:', 'postgresql:']).optional(),
  STRATA_REPLICA_MAX_LAG: duration.default(10_000), // 10 s
  REDIS_URL: redisUrl.optional(),
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: int(0, 65535).default(3000),
  STRATA_ADMIN_TOKEN: z.string().min(16, { message: 'must be at least 16 characters' }).optional(),
  SLOW_QUERY_THRESHOLD_MS: int(1, 3_600_000).default(100),
  PGAPPNAME: z.string().optional(),
  DATABASE_POOL_MAX: int(1).optional(),
  DATABASE_POOL_MIN: int(0).optional(),
  DATABASE_IDLE_TIMEOUT: ms.optional(),
  DATABASE_ACQUIRE_TIMEOUT: ms.optional(),
  DATABASE_STATEMENT_TIMEOUT: ms.optional(),
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT: ms.optional(),
  DATABASE_QUERY_TIMEOUT: ms.optional(),
  DATABASE_LEAK_THRESHOLD: ms.optional(),
  DATABASE_LEAK_STACKS: bool.optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  STRATA_DATA_DIR: z.string().min(1).default('./.strata'),
  STRATA_MIGRATE_ON_START: bool.default(true),
  TRUST_PROXY: z.string().optional(),
  STRATA_IMPORT_DIR: z.string().min(1).optional(),
  STRATA_IMPORT_UPLOAD_RETENTION: ms.default(86_400_000), // 24 h
  STRATA_METRICS_TOKEN: z
    .string()
    .min(16, { message: 'must be at least 16 characters' })
    .optional(),
  STRATA_DASHBOARD_DIR: z.string().min(1).optional(),
  STRATA_ANALYTICS_MAX_RANGE: duration.optional(),
  STRATA_ALERT_WEBHOOK_URL: url(['http:', 'https:']).optional(),
  STRATA_AUTH_FAILURE_LIMIT: int(0).default(50),
  STRATA_AUTH_FAILURE_WINDOW: duration.optional(),
  STRATA_RATE_LIMIT_INGEST: rateLimit.optional(),
  STRATA_RATE_LIMIT_ANALYTICS: rateLimit.optional(),
  STRATA_RATE_LIMIT_IMPORTS: rateLimit.optional(),
  STRATA_RATE_LIMIT_PERFORMANCE: rateLimit.optional(),
  STRATA_ALERT_SLOW_QUERY_SHARE: fraction.optional(),
  STRATA_ALERT_QUERY_P95_MS: int(1, 3_600_000).optional(),
  STRATA_ALERT_POOL_UTILIZATION: fraction.optional(),
  STRATA_ALERT_CACHE_HIT_RATE: fraction.optional(),
  STRATA_ALERT_EVENT_LOOP_P99_MS: int(1, 3_600_000).optional(),
  STRATA_ALERT_HEAP_USED_RATIO: fraction.optional(),
})

function parseTrustProxy(v: string | undefined): StrataConfig['trustProxy'] {
  if (v === undefined || v === '' || v === 'false') return false
  if (v === 'true') return true
  if (/^\d+$/.test(v)) return Number(v)
  return v.split(',').map((s) => s.trim())
}

// pg refuses a pool whose min exceeds its max: say so with the other lines, before the database
// starts. Checked field by field so it is reported even when other variables are bad.
function poolMinLine(input: Record<string, string | undefined>): string | undefined {
  const min = schema.shape.DATABASE_POOL_MIN.safeParse(input.DATABASE_POOL_MIN).data
  const maxVar = schema.shape.DATABASE_POOL_MAX.safeParse(input.DATABASE_POOL_MAX)
  if (min === undefined || !maxVar.success) return undefined
  let max = maxVar.data
  let source = 'DATABASE_POOL_MAX'
  if (max === undefined) {
    // In pg an explicit option beats the URL's pool_max, which beats the default.
    const dbUrl = schema.shape.DATABASE_URL.safeParse(input.DATABASE_URL).data
    const fromUrl = dbUrl ? new URL(dbUrl).searchParams.get('pool_max') : null
    max = fromUrl ? Number(fromUrl) : DATABASE_DEFAULTS.max
    source = fromUrl ? 'pool_max of DATABASE_URL' : 'the default pool size'
  }
  return min > max
    ? `DATABASE_POOL_MIN: must be ≤ ${source} (${max}) (got ${JSON.stringify(input.DATABASE_POOL_MIN)})`
    : undefined
}

const definedOnly = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T

/** Reads and validates configuration; throws STRATA_CONFIG_INVALID with one line per bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): StrataConfig {
  // Empty strings count as unset: `FOO= strata start` should not fail on FOO.
  const input = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  )
  const lines: string[] = []
  const cacheTtls: Record<string, number> = {}
  for (const [name, value] of Object.entries(input)) {
    if (!name.startsWith('CACHE_TTL_')) continue
    try {
      cacheTtls[name.slice('CACHE_TTL_'.length).toLowerCase()] = parseDuration(value!, name)
    } catch {
      lines.push(`${name}: must be a duration like 30s, 10m or 1h (got ${JSON.stringify(value)})`)
    }
  }
  const parsed = schema.safeParse(input)
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0])
      lines.push(`${name}: ${issue.message} (got ${JSON.stringify(input[name])})`)
    }
  }
  const poolMin = poolMinLine(input)
  if (poolMin) lines.push(poolMin)
  // Without DATABASE_URL the service starts an embedded PostgreSQL, which no PgBouncer sits in
  // front of: the hot paths would write to another database than the one migrated.
  if (input.DATABASE_URL_POOLED && !input.DATABASE_URL)
    lines.push(
      'DATABASE_URL_POOLED: needs DATABASE_URL, the direct URL of the database PgBouncer pools (migrations, imports and monitoring use it)',
    )
  if (lines.length || !parsed.success) {
    throw serverErrors.create('STRATA_CONFIG_INVALID', {
      message: `invalid configuration:\n${lines.join('\n')}`,
      details: { lines },
    })
  }
  const e = parsed.data
  const dataDir = e.STRATA_DATA_DIR
  return Object.freeze({
    databaseUrl: e.DATABASE_URL,
    databaseUrlPooled: e.DATABASE_URL_POOLED,
    databaseReadUrl: e.DATABASE_READ_URL,
    replicaMaxLagMs: e.STRATA_REPLICA_MAX_LAG,
    redisUrl: e.REDIS_URL,
    host: e.HOST,
    port: e.PORT,
    adminToken: e.STRATA_ADMIN_TOKEN,
    slowQueryThresholdMs: e.SLOW_QUERY_THRESHOLD_MS,
    databaseApplicationName: e.PGAPPNAME,
    databasePool: definedOnly({
      max: e.DATABASE_POOL_MAX,
      min: e.DATABASE_POOL_MIN,
      idleTimeoutMs: e.DATABASE_IDLE_TIMEOUT,
      acquireTimeoutMs: e.DATABASE_ACQUIRE_TIMEOUT,
      statementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT,
      idleInTransactionTimeoutMs: e.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT,
      queryTimeoutMs: e.DATABASE_QUERY_TIMEOUT,
    }),
    databaseLeakThresholdMs: e.DATABASE_LEAK_THRESHOLD,
    databaseLeakStacks: e.DATABASE_LEAK_STACKS,
    logLevel: e.LOG_LEVEL,
    dataDir,
    migrateOnStart: e.STRATA_MIGRATE_ON_START,
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    importDir: e.STRATA_IMPORT_DIR ?? `${dataDir}/imports`,
    importUploadRetentionMs: e.STRATA_IMPORT_UPLOAD_RETENTION,
    metricsToken: e.STRATA_METRICS_TOKEN,
    dashboardDir: e.STRATA_DASHBOARD_DIR,
    analyticsMaxRangeMs: e.STRATA_ANALYTICS_MAX_RANGE,
    cacheTtls,
    alertWebhookUrl: e.STRATA_ALERT_WEBHOOK_URL,
    authFailureLimit: {
      max: e.STRATA_AUTH_FAILURE_LIMIT,
      windowMs: e.STRATA_AUTH_FAILURE_WINDOW ?? 60_000,
    },
    rateLimits: definedOnly({
      ingest: e.STRATA_RATE_LIMIT_INGEST,
      analytics: e.STRATA_RATE_LIMIT_ANALYTICS,
      imports: e.STRATA_RATE_LIMIT_IMPORTS,
      performance: e.STRATA_RATE_LIMIT_PERFORMANCE,
    }),
    alertThresholds: Object.fromEntries(
      Object.entries({
        slowQueryShare: e.STRATA_ALERT_SLOW_QUERY_SHARE,
        queryP95Ms: e.STRATA_ALERT_QUERY_P95_MS,
        poolUtilization: e.STRATA_ALERT_POOL_UTILIZATION,
        cacheHitRate: e.STRATA_ALERT_CACHE_HIT_RATE,
        eventLoopP99Ms: e.STRATA_ALERT_EVENT_LOOP_P99_MS,
        heapUsedRatio: e.STRATA_ALERT_HEAP_USED_RATIO,
      }).filter(([, v]) => v !== undefined),
    ),
  })
}

/**
 * The @strata/pg options this configuration asks for (everything but the URL and the logger):
 * pool sizing, timeouts, slow-query threshold, leak detection.
 */
export function databaseOptions(config: StrataConfig): DatabaseOptions {
  return {
    ...(config.databaseApplicationName ? { applicationName: config.databaseApplicationName } : {}),
    pool: { ...config.databasePool },
    monitor: { slowQueryMs: config.slowQueryThresholdMs },
    health: {
      ...(config.databaseLeakThresholdMs !== undefined
        ? { leakThresholdMs: config.databaseLeakThresholdMs }
        : {}),
      ...(config.databaseLeakStacks !== undefined ? { leakStacks: config.databaseLeakStacks } : {}),
    },
  }
}

/** Defaults for tests and embedding: a config with no environment at all. */
export function defaultConfig(overrides: Partial<StrataConfig> = {}): StrataConfig {
  return { ...loadConfig({}), ...overrides }
}

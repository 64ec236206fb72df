import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import type { PoolClient, QueryResult, QueryResultRow } from 'pg'
import { Counter, Registry } from 'prom-client'
import { IndexAdvisor } from './advisor/index-advisor.js'
import { isConnectionError, pgErrors, timeoutKind, toDbError, type ErrorContext } from './errors.js'
import { explainStatement, serverVersion } from './explain/explain.js'
import type { ExplainOptions, ExplainResult } from './explain/explain.js'
import { LeakTracker } from './health/leak-tracker.js'
import { SessionHealth } from './health/session-health.js'
import type { Series } from './instrument/fast-histogram.js'
import { LogHistogram } from './instrument/log-histogram.js'
import { pgMetrics, type PgMetrics } from './instrument/metrics.js'
import {
  QueryInstrument,
  type QueryObserver,
  type StatementEntry,
} from './instrument/query-instrument.js'
import { LockMonitor } from './locks/lock-monitor.js'
import { QueryMonitor } from './monitor/query-monitor.js'
import { redactUrl, resolveOptions, type DatabaseOptions, type ResolvedOptions } from './options.js'
import type { QueryOptions, Transaction, TransactionOptions } from './queryable.js'
import { sqlState } from './sql-state.js'
import { StatementStats } from './statements/statement-stats.js'
import type { Database, PoolHandle, PoolStats } from './types.js'

// Query parameters we resolve ourselves; pg would otherwise let the URL override our config
// (pg merges the parsed connection string over explicit options).
const OWN_URL_PARAMS = [
  'application_name',
  'statement_timeout',
  'idle_in_transaction_session_timeout',
  'query_timeout',
  'connect_timeout',
  'pool_max',
  'pool_min',
  'pgbouncer',
]

const RETRYABLE_TX_CODES = new Set(['40001', '40P01'])
const DEFAULT_MAX_RETRIES = 5
const BACKOFF_BASE_MS = 10
const BACKOFF_CAP_MS = 1_000

/** Creates a database handle: an instrumented pg Pool. Connects once to fail fast unless `connect: false`. */
export async function createDatabase(options: DatabaseOptions = {}): Promise<Database> {
  const db = new PgDatabase(resolveOptions(options))
  if (db.options.connect) {
    try {
      await db.warm()
    } catch (err) {
      await db.close()
      throw err
    }
  }
  return db
}

function isDbOriginated(err: unknown): boolean {
  return err instanceof pg.DatabaseError || isConnectionError(err) || timeoutKind(err) !== undefined
}

/** The implementation of Database; internal, reached through `createDatabase`. */
export class PgDatabase implements Database {
  readonly options: Readonly<ResolvedOptions>
  readonly metrics: Registry
  readonly displayUrl: string
  readonly pool: PoolHandle
  readonly monitor: QueryMonitor
  readonly statements: StatementStats
  readonly advisor: IndexAdvisor
  readonly health: SessionHealth
  readonly locks: LockMonitor
  readonly #leaks: LeakTracker
  #version: number | undefined
  readonly #pool: pg.Pool
  readonly #metrics: PgMetrics
  readonly #instrument: QueryInstrument
  readonly #acquireWaits = new LogHistogram()
  readonly #errorCounts = { acquireFailed: 0, connectionLost: 0, discarded: 0 }
  readonly #waitSeries: Series
  readonly #retries: Counter<'reason' | 'pool_name'>
  readonly #brokenClients = new WeakSet<PoolClient>()
  readonly #unregisterGauges: () => void
  readonly #errCtx: ErrorContext
  #closing: Promise<void> | undefined

  constructor(options: Readonly<ResolvedOptions>) {
    this.options = options
    this.displayUrl = redactUrl(options.url)
    this.metrics = options.registry ?? new Registry()
    this.#metrics = pgMetrics(this.metrics)
    this.#instrument = new QueryInstrument(this.#metrics, options.name)
    this.#waitSeries = this.#metrics.waitTime.series({ pool_name: options.name })
    this.#retries =
      (this.metrics.getSingleMetric('db_client_transaction_retries_total') as
        Counter<'reason' | 'pool_name'> | undefined) ??
      new Counter({
        name: 'db_client_transaction_retries_total',
        help: 'Transactions retried after a serialization failure (40001) or deadlock (40P01)',
        labelNames: ['reason', 'pool_name'],
        registers: [this.metrics],
      })
    this.#errCtx = {
      statementTimeoutMs: options.statementTimeoutMs,
      queryTimeoutMs: options.queryTimeoutMs,
      acquireTimeoutMs: options.acquireTimeoutMs,
    }

    // Observability: the monitor observes the query path; the rest query on demand.
    const obs = options.observability
    this.monitor = new QueryMonitor(obs.monitor, options.logger)
    if (obs.monitor.enabled) this.#instrument.addObserver(this.monitor)
    this.#leaks = new LeakTracker(obs.health.leakThresholdMs, obs.health.leakStacks)
    this.health = new SessionHealth(
      this,
      this.#leaks,
      options.applicationName,
      obs.health,
      options.logger,
    )
    this.health.start()
    this.locks = new LockMonitor(this)
    this.statements = new StatementStats(this, obs.statements, options.logger)
    this.advisor = new IndexAdvisor(
      (fn) => this.withClient(fn, { label: 'strata:advisor' }),
      {
        candidates: async (limit) => {
          const fromStats = await this.statements
            .top({ orderBy: 'total', limit })
            .then((r) => (r.available ? r.items.map((i) => i.query) : []))
            .catch(() => [] as string[])
          const fromMonitor = [
            ...this.monitor.stats({ top: limit }).topSlow,
            ...this.monitor.statements({ orderBy: 'total', limit }),
          ].map((s) => s.sql)
          return [...new Set([...fromMonitor, ...fromStats])].slice(0, limit * 2)
        },
      },
      obs.advisor,
      obs.statements.createExtension,
      options.logger,
    )

    const url = new URL(options.url)
    for (const p of OWN_URL_PARAMS) url.searchParams.delete(p)
    const log = options.logger
    this.#pool = new pg.Pool({
      connectionString: url.toString(),
      max: options.max,
      min: options.min,
      idleTimeoutMillis: options.idleTimeoutMs,
      connectionTimeoutMillis: options.acquireTimeoutMs,
      maxLifetimeSeconds: Math.ceil(options.maxLifetimeMs / 1000),
      application_name: options.applicationName,
      // Session settings travel as startup parameters (pg sends these in the StartupMessage, the
      // same as libpq's `options=-c ...`), so no SET round trip after connecting. PgBouncer in
      // transaction mode rejects such parameters and a session SET would leak across clients, so
      // there we send none and apply SET LOCAL inside transactions instead (see `pgbouncer`).
      ...(options.pgbouncer
        ? {}
        : {
            statement_timeout: options.statementTimeoutMs || undefined,
            idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs || undefined,
          }),
      query_timeout: options.queryTimeoutMs || undefined,
      ...(options.Client ? { Client: options.Client } : {}),
    })
    // Without these listeners an error on an idle client (pg_terminate_backend, server restart,
    // network cut) is an unhandled 'error' event and exits Node. pg-pool only listens on idle
    // clients, so each client also gets its own permanent listener for errors that happen while
    // it is checked out (between queries inside withClient/transaction).
    this.#pool.on('error', (err) => {
      log.warn({ err, code: (err as { code?: string }).code }, 'idle database connection failed')
    })
    this.#pool.on('connect', (client) => {
      client.on('error', (err) => {
        this.#brokenClients.add(client)
        this.#errorCounts.connectionLost++
        log.warn({ err, code: (err as { code?: string }).code }, 'database connection failed')
      })
    })
    const pool = this.#pool
    this.#unregisterGauges = this.#metrics.addPool({
      name: options.name,
      max: options.max,
      counts: () => ({
        idle: pool.idleCount,
        used: pool.totalCount - pool.idleCount,
        waiting: pool.waitingCount,
      }),
    })
    const waits = this.#acquireWaits
    const errorCounts = this.#errorCounts
    this.pool = {
      stats(): PoolStats {
        const total = pool.totalCount
        const idle = pool.idleCount
        const active = total - idle
        return {
          total,
          idle,
          active,
          waiting: pool.waitingCount,
          utilization: active / options.max,
          max: options.max,
          acquireWait: {
            count: waits.count,
            p50: waits.quantile(0.5),
            p95: waits.quantile(0.95),
            p99: waits.quantile(0.99),
            max: waits.max,
          },
          errors: { ...errorCounts },
        }
      },
    }
  }

  /** Checks connectivity and opens `min` connections. */
  async warm(): Promise<void> {
    const n = Math.max(1, this.options.min)
    const clients: PoolClient[] = []
    try {
      for (let i = 0; i < n; i++) clients.push(await this.#acquire())
      await clients[0]!.query('SELECT 1')
    } finally {
      for (const c of clients) this.#release(c)
    }
    this.options.logger.info(
      { database: this.displayUrl, pool: this.options.name, max: this.options.max },
      'database connected',
    )
  }

  /** Adds an observer of every finished statement (the query monitor plugs in here). */
  observe(observer: QueryObserver): () => void {
    return this.#instrument.addObserver(observer)
  }

  async query<R extends QueryResultRow = QueryResultRow>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<QueryResult<R>> {
    const entry = this.#instrument.statement(sql)
    const label = options?.label ?? ''
    const t0 = performance.now()
    try {
      const result = await this.#run<R>(sql, params, options?.timeoutMs, t0)
      this.#instrument.record(entry, label, performance.now() - t0, undefined, result.rowCount)
      return result
    } catch (err) {
      // Wrapped here, inside the awaiting async function, so the async stack trace carries the
      // caller's frames at no cost on the success path.
      const wrapped = this.#wrap(err, entry, label)
      this.#instrument.record(entry, label, performance.now() - t0, wrapped)
      throw wrapped
    }
  }

  /**
   * Checkout + query + release on pg's callback APIs with a single promise: the promise-per-step
   * version (pool.connect() then client.query()) added enough client CPU per query over raw
   * pool.query to exceed the wrapper's overhead budget on its own.
   */
  #run<R extends QueryResultRow>(
    sql: string,
    params: readonly unknown[] | undefined,
    timeoutMs: number | undefined,
    t0: number,
  ): Promise<QueryResult<R>> {
    return new Promise((resolve, reject) => {
      if (this.#closing) return reject(pgErrors.create('STRATA_DB_CLOSED'))
      this.#pool.connect((err, client) => {
        const waited = performance.now() - t0
        this.#acquireWaits.record(waited)
        if (err || client === undefined) {
          this.#errorCounts.acquireFailed++
          return reject(err ?? new Error('pool returned no client'))
        }
        this.#waitSeries.observe(waited / 1000)
        const done = (qerr: Error | null, res: QueryResult<R>): void => {
          if (qerr) {
            this.#release(client, qerr)
            reject(qerr)
          } else {
            this.#release(client)
            resolve(res)
          }
        }
        try {
          if (timeoutMs === undefined) client.query<R>(sql, params as unknown[], done)
          else
            client.query<R>(
              {
                text: sql,
                values: params as unknown[] | undefined,
                query_timeout: timeoutMs,
              } as pg.QueryConfig,
              done,
            )
        } catch (qerr) {
          // pg throws synchronously on some bad input (e.g. a non-string query); inside this
          // callback that would be an uncaught exception.
          this.#release(client, qerr)
          reject(qerr)
        }
      })
    })
  }

  async transaction<T>(
    fn: (tx: Transaction) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    if (this.#closing) throw pgErrors.create('STRATA_DB_CLOSED')
    const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES
    const label = options.label ?? ''
    const begin = this.#beginSql(options)
    for (let attempt = 0; ; attempt++) {
      const client = await this.#acquire(label)
      let broken: unknown
      let retry: { err: unknown; state: string } | undefined
      try {
        const tx = new TransactionHandle(client, this.#instrument, label, attempt, (err, entry) =>
          this.#wrap(err, entry, label),
        )
        await tx.query(begin)
        const result = await fn(tx)
        await tx.query('COMMIT')
        return result
      } catch (err) {
        if (isConnectionError(err) || isConnectionError((err as { cause?: unknown })?.cause)) {
          broken = err
        } else {
          // A failed COMMIT has already ended the transaction; ROLLBACK then only warns.
          await client.query('ROLLBACK').catch((e: unknown) => {
            broken = e
          })
        }
        const state = sqlState(err)
        if (state === undefined || !RETRYABLE_TX_CODES.has(state))
          throw isDbOriginated(err) ? this.#wrap(err, undefined, label) : err
        if (attempt >= maxRetries)
          throw pgErrors.create('STRATA_DB_SERIALIZATION_RETRIES_EXHAUSTED', {
            message: `Transaction failed ${attempt + 1} times (SQLSTATE ${state}); giving up`,
            details: { attempts: attempt + 1, code: state, ...(label ? { label } : {}) },
            cause: err,
          })
        retry = { err, state }
      } finally {
        this.#release(client, broken)
      }
      // Back off with the client returned to the pool, not held idle in our hands.
      this.#retries.inc({ reason: retry.state, pool_name: this.options.name })
      options.onRetry?.(retry.err, attempt + 1)
      await sleep(backoffMs(attempt))
    }
  }

  async withClient<T>(
    fn: (client: PoolClient) => Promise<T>,
    options: { label?: string } = {},
  ): Promise<T> {
    const client = await this.#acquire(options.label ?? '')
    try {
      const result = await fn(client)
      this.#release(client)
      return result
    } catch (err) {
      // The client's state is unknown after a failure inside fn (open transaction, half-done
      // COPY, session settings): destroy it rather than hand it to the next caller.
      this.#release(client, err ?? new Error('withClient failed'))
      throw isDbOriginated(err) ? this.#wrap(err, undefined, options.label ?? '') : err
    }
  }

  async explain(
    sql: string,
    params?: readonly unknown[],
    options?: ExplainOptions,
  ): Promise<ExplainResult> {
    return this.withClient(
      async (client) => {
        this.#version ??= await serverVersion(client)
        return explainStatement(client, this.#version, sql, params, options)
      },
      { label: 'strata:explain' },
    )
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.health.stop()
      this.statements.stop()
      this.#unregisterGauges()
      await this.#pool.end()
    })()
    return this.#closing
  }

  /** Checks out a client; `t` = when the caller started (saves a clock read on the hot path). */
  async #acquire(label = '', t = performance.now()): Promise<PoolClient> {
    if (this.#closing) throw pgErrors.create('STRATA_DB_CLOSED')
    // Taken before the first await, so the stack holds the caller's synchronous frames.
    const site = this.#leaks.stacks ? new Error('client acquired here') : undefined
    try {
      const client = await this.#pool.connect()
      const waited = performance.now() - t
      this.#acquireWaits.record(waited)
      this.#waitSeries.observe(waited / 1000)
      this.#leaks.acquired(client, label, site)
      return client
    } catch (err) {
      this.#acquireWaits.record(performance.now() - t)
      this.#errorCounts.acquireFailed++
      throw toDbError(err, this.#errCtx)
    }
  }

  /** Returns a client to the pool, or destroys it when it (or its connection) failed. */
  #release(client: PoolClient, err?: unknown): void {
    const destroy =
      this.#brokenClients.has(client) ||
      (err !== undefined &&
        (isConnectionError(err) ||
          timeoutKind(err) === 'query' ||
          // withClient passes its failure; anything but a plain statement error is suspect.
          !(err instanceof pg.DatabaseError)))
    if (destroy) this.#errorCounts.discarded++
    this.#leaks.released(client)
    client.release(
      destroy ? (err instanceof Error ? err : new Error('client discarded')) : undefined,
    )
  }

  #wrap(err: unknown, entry: StatementEntry | undefined, label: string): Error {
    return toDbError(err, {
      ...this.#errCtx,
      ...(entry ? { operation: entry.operation, collection: entry.collection } : {}),
      label,
    })
  }

  #beginSql(options: TransactionOptions): string {
    let sql = 'BEGIN'
    if (options.isolation) sql += ` ISOLATION LEVEL ${isolationSql(options.isolation)}`
    if (options.readOnly) sql += ' READ ONLY'
    if (this.options.pgbouncer) {
      // Transaction-scoped settings are the only safe ones through PgBouncer transaction mode.
      // Simple-protocol multi-statement: still one round trip.
      if (this.options.statementTimeoutMs)
        sql += `; SET LOCAL statement_timeout = ${this.options.statementTimeoutMs}`
      if (this.options.idleInTransactionTimeoutMs)
        sql += `; SET LOCAL idle_in_transaction_session_timeout = ${this.options.idleInTransactionTimeoutMs}`
    }
    return sql
  }
}

function isolationSql(level: NonNullable<TransactionOptions['isolation']>): string {
  switch (level) {
    case 'read committed':
      return 'READ COMMITTED'
    case 'repeatable read':
      return 'REPEATABLE READ'
    case 'serializable':
      return 'SERIALIZABLE'
    default:
      throw pgErrors.create('STRATA_DB_INVALID_CONFIG', {
        message: `isolation: expected read committed, repeatable read or serializable, got ${JSON.stringify(level)}`,
      })
  }
}

/** Exponential backoff with equal jitter: [d/2, d], d = min(cap, base·2^attempt). */
export function backoffMs(attempt: number): number {
  const d = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt)
  return d / 2 + Math.random() * (d / 2)
}

function runOn<R extends QueryResultRow>(
  client: PoolClient,
  sql: string,
  params: readonly unknown[] | undefined,
  timeoutMs: number | undefined,
): Promise<QueryResult<R>> {
  if (timeoutMs === undefined) return client.query<R>(sql, params as unknown[] | undefined)
  return client.query<R>({
    text: sql,
    values: params as unknown[] | undefined,
    query_timeout: timeoutMs,
  } as pg.QueryConfig)
}

class TransactionHandle implements Transaction {
  readonly client: PoolClient
  /** 0 on the first run, n on the n-th retry. */
  readonly attempt: number
  readonly #instrument: QueryInstrument
  readonly #label: string
  readonly #wrap: (err: unknown, entry: StatementEntry) => Error

  constructor(
    client: PoolClient,
    instrument: QueryInstrument,
    label: string,
    attempt: number,
    wrap: (err: unknown, entry: StatementEntry) => Error,
  ) {
    this.client = client
    this.attempt = attempt
    this.#instrument = instrument
    this.#label = label
    this.#wrap = wrap
  }

  async query<R extends QueryResultRow = QueryResultRow>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<QueryResult<R>> {
    const entry = this.#instrument.statement(sql)
    const label = options?.label ?? this.#label
    const t0 = performance.now()
    try {
      const result = await runOn<R>(this.client, sql, params, options?.timeoutMs)
      this.#instrument.record(entry, label, performance.now() - t0, undefined, result.rowCount)
      return result
    } catch (err) {
      const wrapped = this.#wrap(err, entry)
      this.#instrument.record(entry, label, performance.now() - t0, wrapped)
      throw wrapped
    }
  }
}

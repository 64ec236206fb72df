// The query surface every part of @strata/pg builds on. A leaf: it imports nothing of this
// package, so the monitors, the migrator and the Database interface can all depend on it.
import type { PoolClient, QueryResult, QueryResultRow } from 'pg'

/** Per-call options of `db.query`. */
export interface QueryOptions {
  /** Route or caller name; becomes the `label` dimension of the query histograms. */
  label?: string
  /** Client-side timeout for this call (ms); defaults to the pool's `queryTimeoutMs`. */
  timeoutMs?: number
}

/** Anything that runs a parameterised statement: the database itself or a transaction. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<QueryResult<R>>
}

/** A transaction handle: queries run on the transaction's client. */
export interface Transaction extends Queryable {
  /** The underlying client, for COPY streams or cursors inside the transaction. */
  readonly client: PoolClient
  /** 0 on the first run of the callback, n on its n-th retry. */
  readonly attempt: number
}

export interface TransactionOptions {
  isolation?: 'read committed' | 'repeatable read' | 'serializable'
  readOnly?: boolean
  /** Retries on serialization failure (40001) and deadlock (40P01). @defaultValue 5 */
  maxRetries?: number
  label?: string
  /** Called before each retry with the error and the attempt number about to run (1 = first retry). */
  onRetry?: (err: unknown, attempt: number) => void
}

/**
 * Queries plus the pool's transactions and borrowed clients: what the migrator needs.
 * `Database` adds the pool statistics and the observability parts.
 */
export interface TransactionalQueryable extends Queryable {
  /** Runs `fn` in a transaction, retrying serialization failures and deadlocks with backoff. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T>
  /** Borrows one client for `fn` (COPY, cursors, session settings) and always releases it. */
  withClient<T>(fn: (client: PoolClient) => Promise<T>, options?: { label?: string }): Promise<T>
}

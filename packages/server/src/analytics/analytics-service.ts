import { createHash } from 'node:crypto'
import type { Cache } from '@strata/cache'
import {
  AnalyticsQueries,
  type AnalyticsOptions,
  type ProjectStore,
  type ResolvedAnalyticsOptions,
} from '@strata/events'
import { isStrataError } from '@strata/core'
import { isTransientDbError, type Database } from '@strata/pg'
import type { ReplicaMonitor } from '../replica/replica-monitor.js'

export interface AnalyticsServiceOptions {
  /** Range/limit bounds (max range, max buckets, max limit). */
  limits?: AnalyticsOptions
  /** Database the queries read; default a pool on DATABASE_READ_URL when set, else the service's. */
  readDb?: Database
  /** Clock (tests). @defaultValue Date.now */
  now?: () => number
  /**
   * TTL of answers whose range reaches into the current minute (still changing). Historical
   * answers use CACHE_TTL_ANALYTICS (10 min), lists CACHE_TTL_RECENT (30 s). @defaultValue 5000
   */
  liveTtlMs?: number
}

/** A cached answer: the JSON text and its strong ETag. */
export interface CachedAnswer {
  body: string
  etag: string
  /**
   * Where it was computed (`x-strata-read-from`); absent in entries cached before it existed.
   * `primary` also when no replica is configured.
   */
  readFrom?: 'replica' | 'primary'
  /** The replica's lag (s) when computed there (`x-strata-replica-lag`), else null. */
  replicaLagSeconds?: number | null
  /** The TTL (ms) it was cached with: shorter than asked for on a replica that is behind. */
  ttlMs?: number
}

const MINUTE = 60_000

/**
 * Analytics queries behind a cache (namespace `analytics`): answers are stored as JSON text with
 * an ETag, under keys made of the project, the endpoint and the normalised parameters.
 */
export class AnalyticsService {
  readonly queries: AnalyticsQueries
  readonly now: () => number
  /** TTLs (ms): historical ranges, lists, ranges reaching into the current minute. */
  readonly ttl: { analytics: number; recent: number; live: number }
  readonly #cache: Cache
  readonly #projects: ProjectStore
  readonly #knownProjects = new Map<string, number>()
  readonly #timeouts: { hard: number }
  readonly #replica: { monitor: ReplicaMonitor; queries: AnalyticsQueries } | undefined

  constructor(options: {
    readDb: Database
    /**
     * With a read replica: its lag monitor, and the primary's queries are `queries` (readDb is
     * the primary); reads go to the replica while the monitor says so.
     */
    replica?: { monitor: ReplicaMonitor; db: Database }
    cache: Cache
    projects: ProjectStore
    /** CACHE_TTL_<AREA> values (ms); `analytics` and `recent` are read. */
    cacheTtls: Record<string, number>
    limits?: AnalyticsOptions
    now?: () => number
    liveTtlMs?: number
  }) {
    this.queries = new AnalyticsQueries(options.readDb, options.limits)
    this.#replica = options.replica && {
      monitor: options.replica.monitor,
      queries: new AnalyticsQueries(options.replica.db, options.limits),
    }
    this.now = options.now ?? Date.now
    this.#cache = options.cache.namespace('analytics')
    this.#projects = options.projects
    this.ttl = {
      analytics: options.cacheTtls.analytics ?? 10 * MINUTE,
      recent: options.cacheTtls.recent ?? 30_000,
      live: options.liveTtlMs ?? 5000,
    }
    // A query's own statement timeout bounds it; the cache must not abandon it at its 1 s default.
    this.#timeouts = { hard: this.queries.options.statementTimeoutMs + 1000 }
  }

  get options(): ResolvedAnalyticsOptions {
    return this.queries.options
  }

  /** Does the project exist? A yes is remembered for a minute. */
  async projectExists(id: string): Promise<boolean> {
    if ((this.#knownProjects.get(id) ?? 0) >= this.now()) return true
    if (!(await this.#projects.getProject(id))) return false
    this.#knownProjects.set(id, this.now() + MINUTE)
    return true
  }

  /** TTL for a range ending at `to`: short while it reaches into the last minute. */
  rangeTtl(to: number, t: number): number {
    return to > t - MINUTE ? this.ttl.live : this.ttl.analytics
  }

  /**
   * The answer for `key` from the cache, or computed, serialised and cached for `ttlMs`, on the
   * replica while it is up and within STRATA_REPLICA_MAX_LAG, else on the primary. Where an
   * answer was computed is part of its key: when reads fall back to the primary, answers cached
   * from the lagging replica are not served as if fresh. An answer computed on a replica that
   * is behind (within the bound) is cached for at most the live TTL. When the replica fails the
   * query transiently (refused, dropped, cancelled by a recovery conflict) the primary answers;
   * a refused connection also marks the replica down until the next lag check.
   */
  async cached(
    key: unknown[],
    ttlMs: number,
    compute: (queries: AnalyticsQueries) => Promise<unknown>,
  ): Promise<CachedAnswer> {
    const r = this.#replica
    const state = r?.monitor.state
    if (r && state?.readFrom === 'replica') {
      const lag = state.lagSeconds
      const ttl = lag ? Math.min(ttlMs, this.ttl.live) : ttlMs
      try {
        return await this.#cached([...key, 'replica'], ttl, () => compute(r.queries), {
          readFrom: 'replica',
          replicaLagSeconds: lag,
        })
      } catch (err) {
        const cause = unwrapFactoryError(err)
        // Refused or dropped connections, and queries a hot standby cancels to replay WAL
        // (40001, conflict with recovery): the primary answers this one.
        if (!isTransientDbError(cause)) throw err
        if (isStrataError(cause) && cause.code === 'STRATA_DB_UNAVAILABLE')
          r.monitor.markDown(cause)
      }
    }
    return this.#cached([...key, 'primary'], ttlMs, () => compute(this.queries), {
      readFrom: 'primary',
      replicaLagSeconds: null,
    })
  }

  #cached(
    key: unknown[],
    ttlMs: number,
    compute: () => Promise<unknown>,
    source: Pick<CachedAnswer, 'readFrom' | 'replicaLagSeconds'>,
  ): Promise<CachedAnswer> {
    const digest = createHash('sha256').update(JSON.stringify(key)).digest('base64url')
    return this.#cache.getOrSet<CachedAnswer>(
      `${String(key[0])}:${String(key[1])}:${digest}`,
      async () => {
        const body = JSON.stringify(await compute())
        const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`
        return { body, etag, ...source, ttlMs }
      },
      { ttl: ttlMs, timeouts: this.#timeouts },
    )
  }
}

/** What the computation threw, when the cache wrapped it. */
function unwrapFactoryError(err: unknown): unknown {
  return isStrataError(err) && err.code === 'STRATA_CACHE_FACTORY_ERROR' ? (err.cause ?? err) : err
}

import { randomBytes } from 'node:crypto'
import {
  assertPgText,
  parseDuration,
  silentLogger,
  toPgInet,
  type Duration,
  type Logger,
} from '@strata/core'
import type { LockProvider } from '@strata/lock'
import type { Database } from '@strata/pg'
import { LRUCache } from 'lru-cache'
import { UserAgentParser } from '../enrichment/user-agent-parser.js'
import { eventsErrors } from '../errors.js'
import { SESSION_DEFAULTS } from '../options.js'
import { runExclusive } from '../run-exclusive.js'
import type { DeviceType } from '../types.js'
import { isStorableString } from '../validation/json-guard.js'

const USER_AGENT_MAX = 2048

export interface Session {
  projectId: string
  sessionId: string
  userId: string
  createdAt: string
  lastActivityAt: string
  expiresAt: string
  endedAt: string | null
  ip: string | null
  deviceType: DeviceType | null
  browser: string | null
  os: string | null
}

/**
 * The cache the store needs: @strata/cache's `createCache()` satisfies it structurally (and adds
 * cross-instance invalidation through its bus); the default is a per-process LRU.
 */
export interface SessionCache {
  getOrSet<T>(key: string, factory: () => Promise<T>, options?: { ttl?: Duration }): Promise<T>
  delete(key: string): Promise<unknown>
}

export interface SessionStoreOptions {
  cache?: SessionCache
  /** Lifetime of a new session. @defaultValue '7d' */
  ttl?: Duration
  /** How long a validated session is served from the cache. With the default per-process cache this bounds how long a logout on another instance goes unnoticed. @defaultValue '5s' */
  cacheTtl?: Duration
  /** Touches are written behind: at most one UPDATE per session per interval. @defaultValue '30s' */
  touchInterval?: Duration
  /** Ended or expired sessions are deleted this long after they end. @defaultValue '1d' */
  retention?: Duration
  /** How often start() runs cleanup (one instance at a time). @defaultValue '10m' */
  cleanupInterval?: Duration
  /**
   * Shared lock for cleanup: each run first takes `events:sessions-cleanup` (without waiting)
   * and is skipped while another instance holds it, so one instance at a time runs it. Without
   * it every instance runs cleanup each interval; a Postgres advisory lock still keeps two
   * DELETEs from overlapping.
   */
  lock?: LockProvider
  logger?: Logger
}

/**
 * A session to create. There is no `sessionId`: Strata generates it (256 random bits), so a
 * caller can never pick, guess or fix another user's session id.
 */
export interface CreateSessionInput {
  projectId: string
  userId: string
  /** Client IP; an IPv6 zone id (`%eth0`) is dropped, anything else not an address → 400. */
  ip?: string | null
  /** At most 2048 characters. */
  userAgent?: string | null
  /** Lifetime override, e.g. '1h' or ms. */
  expiresIn?: Duration
}

interface SessionDbRow {
  project_id: string
  session_id: string
  user_id: string
  created_at: Date
  last_activity_at: Date
  expires_at: Date
  ended_at: Date | null
  ip: string | null
  device_type: DeviceType | null
  browser: string | null
  os: string | null
}

const COLUMNS =
  'project_id, session_id, user_id, created_at, last_activity_at, expires_at, ended_at, host(ip) AS ip, device_type, browser, os'
// pg_try_advisory_xact_lock key: one instance runs cleanup at a time ('STRSESSC').
const CLEANUP_LOCK_KEY = '6004234345562235715'
/** The `lock` option's key for cleanup runs. */
export const SESSION_CLEANUP_LOCK = 'events:sessions-cleanup'

class LocalCache implements SessionCache {
  #lru = new LRUCache<string, { v: unknown }>({ max: 50_000 })
  #inflight = new Map<string, Promise<unknown>>()
  async getOrSet<T>(
    key: string,
    factory: () => Promise<T>,
    options?: { ttl?: Duration },
  ): Promise<T> {
    const hit = this.#lru.get(key)
    if (hit) return hit.v as T
    let p = this.#inflight.get(key) as Promise<T> | undefined
    if (!p) {
      p = factory().finally(() => this.#inflight.delete(key))
      this.#inflight.set(key, p)
    }
    const v = await p
    if (v !== null && v !== undefined)
      this.#lru.set(key, { v }, { ttl: parseDuration(options?.ttl ?? '5s') })
    return v
  }
  async delete(key: string): Promise<void> {
    this.#lru.delete(key)
  }
}

/** A value the cache keeps: only live sessions are cached, so a new session is seen at once. */
class NotFound extends Error {}

/**
 * User sessions: created with the project's admin key (server side), validated from the cache,
 * touched write-behind, ended on logout, cleaned up by one instance at a time. Ingested events
 * never create one: a login's `sessionId` is only an attribute of that login.
 */
export class SessionStore {
  readonly #db: Database
  readonly #cache: SessionCache
  readonly #ua = new UserAgentParser()
  readonly #log: Logger
  readonly #lock: LockProvider | undefined
  readonly #o: {
    ttlMs: number
    cacheTtlMs: number
    touchMs: number
    retentionMs: number
    cleanupMs: number
  }
  #touches = new Map<string, { projectId: string; sessionId: string; at: number }>()
  #touchTimer: NodeJS.Timeout | null = null
  #cleanupTimer: NodeJS.Timeout | null = null
  #touchFlush: Promise<void> | null = null

  constructor(db: Database, options: SessionStoreOptions = {}) {
    this.#db = db
    this.#cache = options.cache ?? new LocalCache()
    this.#log = options.logger ?? silentLogger
    this.#lock = options.lock
    this.#o = Object.freeze({
      ttlMs: parseDuration(options.ttl ?? SESSION_DEFAULTS.ttl, 'ttl'),
      cacheTtlMs: parseDuration(options.cacheTtl ?? SESSION_DEFAULTS.cacheTtl, 'cacheTtl'),
      touchMs: parseDuration(
        options.touchInterval ?? SESSION_DEFAULTS.touchInterval,
        'touchInterval',
      ),
      retentionMs: parseDuration(options.retention ?? SESSION_DEFAULTS.retention, 'retention'),
      cleanupMs: parseDuration(
        options.cleanupInterval ?? SESSION_DEFAULTS.cleanupInterval,
        'cleanupInterval',
      ),
    })
  }

  /** Starts the write-behind touch flusher and the periodic cleanup. */
  start(): void {
    this.#touchTimer ??= setInterval(() => void this.flushTouches(), this.#o.touchMs).unref()
    this.#cleanupTimer ??= setInterval(() => {
      this.cleanup().catch((err: unknown) => this.#log.warn({ err }, 'session cleanup failed'))
    }, this.#o.cleanupMs).unref()
  }

  async close(): Promise<void> {
    if (this.#touchTimer) clearInterval(this.#touchTimer)
    if (this.#cleanupTimer) clearInterval(this.#cleanupTimer)
    this.#touchTimer = this.#cleanupTimer = null
    await this.flushTouches()
  }

  /**
   * Creates a session with a generated id (`ses_` + 256 random bits). Every text is checked
   * before the database sees it; a bad one → STRATA_SESSION_INVALID (400) naming the field.
   */
  async create(input: CreateSessionInput): Promise<Session> {
    // JavaScript callers (and old ones) may still pass an id: refuse it rather than ignore it.
    if ((input as { sessionId?: unknown }).sessionId !== undefined)
      throw invalid('sessionId is generated by Strata and cannot be chosen', 'sessionId')
    const sessionId = `ses_${randomBytes(32).toString('base64url')}`
    const userId = input.userId
    if (typeof userId !== 'string' || userId.length === 0 || userId.length > 255)
      throw invalid('userId must be a string of 1-255 characters', 'userId')
    assertPgText(userId, 'userId', invalid)
    let ip: string | null = null
    if (input.ip !== undefined && input.ip !== null && input.ip !== '') {
      ip = toPgInet(input.ip)
      if (ip === null)
        throw invalid(`ip ${JSON.stringify(input.ip)} is not an IPv4 or IPv6 address`, 'ip')
    }
    const userAgent = input.userAgent || null
    if (userAgent !== null) {
      if (userAgent.length > USER_AGENT_MAX)
        throw invalid(`userAgent is longer than ${USER_AGENT_MAX} characters`, 'userAgent')
      assertPgText(userAgent, 'userAgent', invalid)
    }
    const ttlMs =
      input.expiresIn === undefined ? this.#o.ttlMs : parseDuration(input.expiresIn, 'expiresIn')
    const ua = this.#ua.parse(userAgent)
    const res = await this.#db.query<SessionDbRow>(
      `INSERT INTO user_sessions (project_id, session_id, user_id, expires_at, ip, user_agent, device_type, browser, os)
       VALUES ($1, $2, $3, now() + make_interval(secs => $4::double precision / 1000), $5, $6, $7, $8, $9)
       ON CONFLICT (project_id, session_id) DO NOTHING
       RETURNING ${COLUMNS}`,
      [
        input.projectId,
        sessionId,
        input.userId,
        ttlMs,
        ip,
        userAgent,
        ua.deviceType,
        ua.browser,
        ua.os,
      ],
      { label: 'events.sessions.create' },
    )
    const row = res.rows[0]
    if (!row)
      throw eventsErrors.create('STRATA_SESSION_INVALID', {
        message: `Session ${sessionId} already exists`,
        details: { sessionId },
      })
    return toSession(row)
  }

  /** A live session (not ended, not expired), from the cache when possible; null otherwise. */
  async validate(projectId: string, sessionId: string): Promise<Session | null> {
    if (!validId(sessionId)) return null
    let s: Session | null
    try {
      s = await this.#cache.getOrSet(
        key(projectId, sessionId),
        async () => {
          const found = await this.#load(projectId, sessionId)
          // Thrown, not returned: caches should not keep a miss (the session may appear next).
          if (!found) throw new NotFound()
          return found
        },
        { ttl: this.#o.cacheTtlMs },
      )
    } catch (err) {
      // Caches may wrap factory errors (@strata/cache does, keeping the original as cause).
      for (let e: unknown = err; e instanceof Error; e = e.cause)
        if (e instanceof NotFound) return null
      throw err
    }
    if (s.endedAt !== null || Date.parse(s.expiresAt) <= Date.now()) return null
    const pending = this.#touches.get(key(projectId, sessionId))
    return pending
      ? {
          ...s,
          lastActivityAt: new Date(
            Math.max(pending.at, Date.parse(s.lastActivityAt)),
          ).toISOString(),
        }
      : s
  }

  /** Records activity; written behind (one UPDATE per session per touchInterval at most). */
  async touch(projectId: string, sessionId: string): Promise<Session | null> {
    const s = await this.validate(projectId, sessionId)
    if (!s) return null
    const now = Date.now()
    this.#touches.set(key(projectId, sessionId), { projectId, sessionId, at: now })
    return { ...s, lastActivityAt: new Date(now).toISOString() }
  }

  /** Ends a session (logout); false when there was no live session. */
  async end(projectId: string, sessionId: string): Promise<boolean> {
    if (!validId(sessionId)) return false
    const res = await this.#db.query(
      `UPDATE user_sessions SET ended_at = now() WHERE project_id = $1 AND session_id = $2 AND ended_at IS NULL AND expires_at > now()`,
      [projectId, sessionId],
      { label: 'events.sessions.end' },
    )
    this.#touches.delete(key(projectId, sessionId))
    await this.#cache.delete(key(projectId, sessionId))
    return (res.rowCount ?? 0) > 0
  }

  /** Writes pending touches in one statement. */
  async flushTouches(): Promise<void> {
    if (this.#touchFlush) return this.#touchFlush
    if (this.#touches.size === 0) return
    const batch = [...this.#touches.values()].sort((a, b) =>
      a.projectId + a.sessionId < b.projectId + b.sessionId ? -1 : 1,
    )
    this.#touches = new Map()
    this.#touchFlush = (async () => {
      try {
        await this.#db.query(
          `UPDATE user_sessions s SET last_activity_at = greatest(s.last_activity_at, v.at)
           FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS v(p, id, at)
           WHERE s.project_id = v.p AND s.session_id = v.id`,
          [
            batch.map((t) => t.projectId),
            batch.map((t) => t.sessionId),
            batch.map((t) => new Date(t.at).toISOString()),
          ],
          { label: 'events.sessions.touch' },
        )
        for (const t of batch) await this.#cache.delete(key(t.projectId, t.sessionId))
      } catch (err) {
        // Put them back (unless newer touches arrived) so the next interval retries.
        for (const t of batch) {
          const k = key(t.projectId, t.sessionId)
          if (!this.#touches.has(k)) this.#touches.set(k, t)
        }
        this.#log.warn({ err, sessions: batch.length }, 'session touch flush failed')
      } finally {
        this.#touchFlush = null
      }
    })()
    return this.#touchFlush
  }

  /**
   * Deletes sessions that ended or expired more than `retention` ago. Returns the number deleted,
   * or null when another instance holds the cleanup lock: the `lock` option's, or else the
   * transaction-scoped advisory lock (safe through PgBouncer in transaction mode).
   */
  async cleanup(): Promise<number | null> {
    return runExclusive(this.#lock, SESSION_CLEANUP_LOCK, () => this.#deleteOld())
  }

  #deleteOld(): Promise<number | null> {
    return this.#db.transaction(async (tx) => {
      const lock = await tx.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_xact_lock($1::bigint) AS ok',
        [CLEANUP_LOCK_KEY],
      )
      if (!lock.rows[0]?.ok) return null
      const res = await tx.query(
        `DELETE FROM user_sessions
         WHERE expires_at < now() - make_interval(secs => $1::double precision / 1000)
            OR ended_at < now() - make_interval(secs => $1::double precision / 1000)`,
        [this.#o.retentionMs],
        { label: 'events.sessions.cleanup' },
      )
      return res.rowCount ?? 0
    })
  }

  async #load(projectId: string, sessionId: string): Promise<Session | null> {
    const res = await this.#db.query<SessionDbRow>(
      `SELECT ${COLUMNS} FROM user_sessions WHERE project_id = $1 AND session_id = $2`,
      [projectId, sessionId],
      { label: 'events.sessions.get' },
    )
    return res.rows[0] ? toSession(res.rows[0]) : null
  }
}

// ≤ 200: session ids travel in URL paths, where the server caps a segment at 200 characters.
function validId(id: string): boolean {
  return id.length > 0 && id.length <= 200 && isStorableString(id)
}

function invalid(message: string, field: string): Error {
  return eventsErrors.create('STRATA_SESSION_INVALID', { message, details: { parameter: field } })
}

function key(projectId: string, sessionId: string): string {
  return `session:${projectId}:${sessionId}`
}

function toSession(r: SessionDbRow): Session {
  return {
    projectId: r.project_id,
    sessionId: r.session_id,
    userId: r.user_id,
    createdAt: r.created_at.toISOString(),
    lastActivityAt: r.last_activity_at.toISOString(),
    expiresAt: r.expires_at.toISOString(),
    endedAt: r.ended_at ? r.ended_at.toISOString() : null,
    ip: r.ip,
    deviceType: r.device_type,
    browser: r.browser,
    os: r.os,
  }
}

import { parseDuration, type Duration } from '@strata/core'
import type { Database } from '@strata/pg'
import { LRUCache } from 'lru-cache'
import { eventsErrors } from '../errors.js'
import { PROJECT_STORE_DEFAULTS } from '../options.js'
import { generateKey, keyMatches, keyPrefix, type KeyKind } from './api-key.js'

export interface Project {
  id: string
  name: string
  createdAt: string
}

export interface ApiKeyInfo {
  id: string
  projectId: string
  kind: KeyKind
  prefix: string
  createdAt: string
  revokedAt: string | null
}

/** Who a verified key belongs to. */
export interface KeyPrincipal {
  keyId: string
  projectId: string
  kind: KeyKind
}

export interface ProjectStoreOptions {
  /**
   * How long a verified (or unknown) key prefix is remembered per instance. This bounds how
   * long a revoked key keeps working on another instance. @defaultValue '1s'
   */
  keyCacheTtl?: Duration
  /** Known key prefixes remembered. @defaultValue 10000 */
  keyCacheMaxEntries?: number
  /**
   * Unknown key prefixes remembered, in a cache of their own: a flood of made-up keys must
   * not push known keys out. @defaultValue 1000
   */
  unknownKeyCacheMaxEntries?: number
}

// Unknown prefixes cost one indexed lookup each; the cache only spares a client that repeats
// a wrong key (a misconfigured SDK), so it stays small.
const UNKNOWN_KEY_CACHE_MAX_ENTRIES = 1000

interface KeyRow {
  id: string
  project_id: string
  kind: KeyKind
  hash: Buffer
  revoked_at: Date | null
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Projects (tenants) and their API keys. */
export class ProjectStore {
  readonly #db: Database
  // A short TTL rather than an invalidation bus: revocation is rare, and 1 s staleness on every
  // instance is the contract (DESIGN.md) while hot keys still cost one query per second.
  readonly #keys: LRUCache<string, KeyRow>
  readonly #unknownKeys: LRUCache<string, true>

  constructor(db: Database, options: ProjectStoreOptions = {}) {
    this.#db = db
    const ttl = parseDuration(
      options.keyCacheTtl ?? PROJECT_STORE_DEFAULTS.keyCacheTtl,
      'keyCacheTtl',
    )
    this.#keys = new LRUCache({
      max: options.keyCacheMaxEntries ?? PROJECT_STORE_DEFAULTS.keyCacheMaxEntries,
      ttl,
    })
    this.#unknownKeys = new LRUCache({
      max: options.unknownKeyCacheMaxEntries ?? UNKNOWN_KEY_CACHE_MAX_ENTRIES,
      ttl,
    })
  }

  /** Creates a project with one write and one admin key; the secrets are returned only here. */
  async createProject(
    name: string,
  ): Promise<{ project: Project; keys: { write: string; admin: string } }> {
    return this.#db.transaction(async (tx) => {
      const res = await tx.query<{ id: string; name: string; created_at: Date }>(
        'INSERT INTO projects (name) VALUES ($1) RETURNING id, name, created_at',
        [name],
        { label: 'events.projects.create' },
      )
      const p = res.rows[0]!
      const write = generateKey('write')
      const admin = generateKey('admin')
      await tx.query(
        `INSERT INTO api_keys (project_id, kind, prefix, hash) VALUES ($1, 'write', $2, $3), ($1, 'admin', $4, $5)`,
        [p.id, write.prefix, write.hash, admin.prefix, admin.hash],
        { label: 'events.keys.create' },
      )
      return {
        project: { id: p.id, name: p.name, createdAt: p.created_at.toISOString() },
        keys: { write: write.secret, admin: admin.secret },
      }
    })
  }

  async listProjects(): Promise<Project[]> {
    const res = await this.#db.query<{ id: string; name: string; created_at: Date }>(
      'SELECT id, name, created_at FROM projects ORDER BY created_at, id',
      [],
      { label: 'events.projects.list' },
    )
    return res.rows.map((p) => ({ id: p.id, name: p.name, createdAt: p.created_at.toISOString() }))
  }

  async getProject(id: string): Promise<Project | null> {
    if (!UUID_RE.test(id)) return null
    const res = await this.#db.query<{ id: string; name: string; created_at: Date }>(
      'SELECT id, name, created_at FROM projects WHERE id = $1',
      [id],
      { label: 'events.projects.get' },
    )
    const p = res.rows[0]
    return p ? { id: p.id, name: p.name, createdAt: p.created_at.toISOString() } : null
  }

  /** Creates a key; throws STRATA_PROJECT_NOT_FOUND for an unknown project. */
  async createKey(projectId: string, kind: KeyKind): Promise<{ key: ApiKeyInfo; secret: string }> {
    if (!(await this.getProject(projectId))) throw eventsErrors.create('STRATA_PROJECT_NOT_FOUND')
    const k = generateKey(kind)
    const res = await this.#db.query<KeyDbRow>(
      `INSERT INTO api_keys (project_id, kind, prefix, hash) VALUES ($1, $2, $3, $4)
       RETURNING id, project_id, kind, prefix, created_at, revoked_at`,
      [projectId, kind, k.prefix, k.hash],
      { label: 'events.keys.create' },
    )
    this.#unknownKeys.delete(k.prefix)
    return { key: keyInfo(res.rows[0]!), secret: k.secret }
  }

  async listKeys(projectId: string): Promise<ApiKeyInfo[]> {
    if (!UUID_RE.test(projectId)) return []
    const res = await this.#db.query<KeyDbRow>(
      `SELECT id, project_id, kind, prefix, created_at, revoked_at FROM api_keys WHERE project_id = $1 ORDER BY created_at, id`,
      [projectId],
      { label: 'events.keys.list' },
    )
    return res.rows.map(keyInfo)
  }

  /**
   * Revokes a key (idempotent). Other instances stop accepting it within `keyCacheTtl`; this
   * one immediately. Throws STRATA_KEY_NOT_FOUND for an unknown id.
   */
  async revokeKey(keyId: string): Promise<ApiKeyInfo> {
    if (!UUID_RE.test(keyId)) throw eventsErrors.create('STRATA_KEY_NOT_FOUND')
    const res = await this.#db.query<KeyDbRow>(
      `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
       RETURNING id, project_id, kind, prefix, created_at, revoked_at`,
      [keyId],
      { label: 'events.keys.revoke' },
    )
    const row = res.rows[0]
    if (!row) throw eventsErrors.create('STRATA_KEY_NOT_FOUND')
    this.#keys.delete(row.prefix)
    return keyInfo(row)
  }

  /** The key's project and kind, or null when the key is unknown, malformed or revoked. */
  async verifyKey(secret: string): Promise<KeyPrincipal | null> {
    const prefix = keyPrefix(secret)
    if (prefix === null) return null
    let row = this.#keys.get(prefix)
    if (!row) {
      if (this.#unknownKeys.has(prefix)) return null
      const res = await this.#db.query<KeyRow>(
        'SELECT id, project_id, kind, hash, revoked_at FROM api_keys WHERE prefix = $1',
        [prefix],
        { label: 'events.keys.verify' },
      )
      row = res.rows[0]
      if (!row) {
        this.#unknownKeys.set(prefix, true)
        return null
      }
      this.#keys.set(prefix, row)
    }
    if (row.revoked_at !== null || !keyMatches(secret, row.hash)) return null
    return { keyId: row.id, projectId: row.project_id, kind: row.kind }
  }
}

interface KeyDbRow {
  id: string
  project_id: string
  kind: KeyKind
  prefix: string
  created_at: Date
  revoked_at: Date | null
}

function keyInfo(r: KeyDbRow): ApiKeyInfo {
  return {
    id: r.id,
    projectId: r.project_id,
    kind: r.kind,
    prefix: r.prefix,
    createdAt: r.created_at.toISOString(),
    revokedAt: r.revoked_at ? r.revoked_at.toISOString() : null,
  }
}

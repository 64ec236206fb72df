// A typed client for the service's HTTP API: `Authorization: Bearer <key>` on every call (the
// key never goes into a URL), answers typed from the service's own types, failures as ApiError.
import { apiQuery } from '../lib/url-state.js'
import { ApiError, errorFromResponse, networkError } from './errors.js'
import type {
  ActiveUsers,
  AlertsAnswer,
  CacheStats,
  HealthReport,
  ImportJob,
  IndexSuggestionsAnswer,
  LoginAnalytics,
  Page,
  PerformanceSummary,
  PoolStats,
  Project,
  QueriesAnswer,
  RecentLogin,
  SessionAnalytics,
  SlowQueriesAnswer,
  UserActivityItem,
} from './types.js'

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>

export interface ClientOptions {
  key: string
  /** Origin of the service; '' = the page's own. */
  baseUrl?: string
  fetch?: Fetch
}

/** The analytics scope of a call: `project` is sent only for the operator token. */
export interface Scope {
  project?: string | undefined
}

export interface RangeQuery extends Scope {
  from: string
  to: string
  tz: string
}

export interface RecentLoginsQuery extends Scope {
  limit?: number
  cursor?: string | null
  method?: string | undefined
  success?: boolean | undefined
  userId?: string | undefined
}

type Params = Record<string, string | number | boolean | null | undefined>

// A project key's shape (`sk_w_` write, `sk_a_` admin, then 43 base64url characters), as the
// service generates them; the operator token is any other string of 16 or more characters.
const PROJECT_KEY = /^sk_[wa]_[A-Za-z0-9_-]{43}$/

export class ApiClient {
  readonly #key: string
  readonly #base: string
  readonly #fetch: Fetch

  constructor(options: ClientOptions) {
    this.#key = options.key
    this.#base = options.baseUrl ?? ''
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  }

  /** True when the key has a project key's shape (so it is not the operator token). */
  get hasProjectKey(): boolean {
    return PROJECT_KEY.test(this.#key)
  }

  /** The URL of a path and query (for links such as the rejects download). */
  url(path: string, params: Params = {}): string {
    return `${this.#base}${path}${apiQuery(params)}`
  }

  async #request(path: string, params: Params, init: RequestInit = {}): Promise<Response> {
    let res: Response
    try {
      res = await this.#fetch(this.url(path, params), {
        ...init,
        headers: {
          accept: 'application/json',
          ...(init.headers as Record<string, string> | undefined),
          authorization: `Bearer ${this.#key}`,
        },
      })
    } catch (err) {
      if ((err as Error)?.name === 'AbortError') throw err
      throw networkError(err)
    }
    if (!res.ok) throw errorFromResponse(res.status, await res.text().catch(() => ''))
    return res
  }

  async get<T>(path: string, params: Params = {}, signal?: AbortSignal): Promise<T> {
    const res = await this.#request(path, params, signal ? { signal } : {})
    return (await res.json()) as T
  }

  async post<T>(path: string, body: unknown = {}): Promise<T> {
    const res = await this.#request(
      path,
      {},
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      },
    )
    return (await res.json()) as T
  }

  /** Downloads a file with the key (a plain link could not send it). */
  async blob(path: string): Promise<Blob> {
    const res = await this.#request(path, {}, { headers: { accept: '*/*' } })
    return res.blob()
  }

  // Projects (operator token)
  projects(signal?: AbortSignal): Promise<Page<Project>> {
    return this.get('/v1/projects', {}, signal)
  }

  // Analytics (a project's admin key, or the operator token with ?project=)
  /** `uniques: false` skips the distinct-user count (rollups only: much faster). */
  logins(
    q: RangeQuery & { interval: string; uniques?: boolean },
    signal?: AbortSignal,
  ): Promise<LoginAnalytics> {
    return this.get('/v1/analytics/logins', { ...q }, signal)
  }

  activeUsers(q: RangeQuery, signal?: AbortSignal): Promise<ActiveUsers> {
    return this.get('/v1/analytics/active-users', { ...q }, signal)
  }

  sessions(q: RangeQuery, signal?: AbortSignal): Promise<SessionAnalytics> {
    return this.get('/v1/analytics/sessions', { ...q }, signal)
  }

  recentLogins(q: RecentLoginsQuery, signal?: AbortSignal): Promise<Page<RecentLogin>> {
    return this.get('/v1/analytics/recent-logins', { ...q }, signal)
  }

  userActivity(
    userId: string,
    q: Scope & { limit?: number; cursor?: string | null },
    signal?: AbortSignal,
  ): Promise<Page<UserActivityItem>> {
    return this.get(`/v1/analytics/users/${encodeURIComponent(userId)}/activity`, { ...q }, signal)
  }

  // Imports (operator token)
  imports(q: { limit?: number; cursor?: string | null } = {}, signal?: AbortSignal) {
    return this.get<Page<ImportJob>>('/v1/imports', { ...q }, signal)
  }

  importAction(id: string, action: 'pause' | 'resume' | 'cancel'): Promise<{ job: ImportJob }> {
    return this.post(`/v1/imports/${encodeURIComponent(id)}/${action}`)
  }

  rejectsPath(id: string): string {
    return `/v1/imports/${encodeURIComponent(id)}/rejects`
  }

  // Performance (operator token)
  performance(signal?: AbortSignal): Promise<PerformanceSummary> {
    return this.get('/v1/performance', {}, signal)
  }

  health(signal?: AbortSignal): Promise<HealthReport> {
    return this.get('/v1/performance/health', {}, signal)
  }

  alerts(signal?: AbortSignal): Promise<AlertsAnswer> {
    return this.get('/v1/performance/alerts', {}, signal)
  }

  slowQueries(limit: number, signal?: AbortSignal): Promise<SlowQueriesAnswer> {
    return this.get('/v1/performance/slow-queries', { limit }, signal)
  }

  queries(limit: number, signal?: AbortSignal): Promise<QueriesAnswer> {
    return this.get('/v1/performance/queries', { limit }, signal)
  }

  indexSuggestions(signal?: AbortSignal): Promise<IndexSuggestionsAnswer> {
    return this.get('/v1/performance/index-suggestions', {}, signal)
  }

  pool(signal?: AbortSignal): Promise<PoolStats> {
    return this.get('/v1/performance/pool', {}, signal)
  }

  cache(signal?: AbortSignal): Promise<CacheStats> {
    return this.get('/v1/performance/cache', {}, signal)
  }
}

export type Role = 'operator' | 'project'

/**
 * Finds what a key is: a project key (by its shape) may read its project's analytics; any other
 * key is tried as the operator token, which can list projects. A project key never asks for the
 * operator's project list (that would be a 403 in the browser's console); a key of another shape
 * that gets 403 there is tried as a project key too. Anything else (unknown key, write key)
 * throws the ApiError to show on the sign-in form.
 */
export async function detectRole(client: ApiClient): Promise<Role> {
  if (!client.hasProjectKey) {
    try {
      await client.projects()
      return 'operator'
    } catch (err) {
      if (!(err instanceof ApiError) || !err.forbidden) throw err
    }
  }
  try {
    await client.recentLogins({ limit: 1 })
    return 'project'
  } catch (err) {
    if (err instanceof ApiError && err.forbidden)
      throw new ApiError(
        403,
        err.code,
        'This key cannot read analytics: sign in with a project admin key or the operator token',
      )
    throw err
  }
}

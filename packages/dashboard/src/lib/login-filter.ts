// Recent-logins filters: kept in the URL (method, result, user) next to the view state, sent to
// the API, and applied again to the answer so that they hold even where the service does not
// filter yet (it ignores parameters it does not know).
import type { RecentLogin } from '../api/types.js'

export type ResultFilter = 'all' | 'success' | 'failure'

export interface LoginFilter {
  method: string
  result: ResultFilter
  userId: string
}

export const KNOWN_METHODS = ['email', 'google', 'github', 'okta_saml', 'okta_oauth', 'magic_link']

export function parseLoginFilter(search: string): LoginFilter {
  const q = new URLSearchParams(search)
  const r = q.get('result')
  return {
    method: (q.get('method') ?? '').slice(0, 64),
    result: r === 'success' || r === 'failure' ? r : 'all',
    userId: (q.get('user') ?? '').slice(0, 255),
  }
}

/** The filter written into a query string (other parameters kept). */
export function writeLoginFilter(search: string, f: LoginFilter): string {
  const q = new URLSearchParams(search)
  const put = (k: string, v: string) => (v ? q.set(k, v) : q.delete(k))
  put('method', f.method)
  put('result', f.result === 'all' ? '' : f.result)
  put('user', f.userId)
  const s = q.toString()
  return s ? `?${s}` : ''
}

/** The API's parameters for a filter (`success` as true/false, absent for all). */
export function loginFilterParams(f: LoginFilter): {
  method?: string
  success?: boolean
  userId?: string
} {
  return {
    ...(f.method ? { method: f.method } : {}),
    ...(f.result !== 'all' ? { success: f.result === 'success' } : {}),
    ...(f.userId ? { userId: f.userId } : {}),
  }
}

export function matchesLoginFilter(l: RecentLogin, f: LoginFilter): boolean {
  return (
    (!f.method || l.method === f.method) &&
    (f.result === 'all' || l.success === (f.result === 'success')) &&
    (!f.userId || l.userId === f.userId)
  )
}

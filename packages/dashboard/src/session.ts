// Who is signed in. The key lives in sessionStorage (this tab only, gone when it closes) and
// in memory; it is never put in a URL or logged.
import { createContext, useContext } from 'react'
import type { ApiClient } from './api/client.js'
import { type Role } from './api/client.js'

export const KEY_STORAGE = 'strata.key'
export const ROLE_STORAGE = 'strata.role'

export interface Session {
  client: ApiClient
  role: Role
  /** Forgets the key; `message` is shown on the sign-in form (e.g. why). */
  signOut: (message?: string) => void
}

export interface StoredSession {
  key: string
  role: Role
}

function storage(): Storage | undefined {
  try {
    return window.sessionStorage
  } catch {
    return undefined // storage disabled: the key stays in memory only
  }
}

export function loadStoredSession(): StoredSession | undefined {
  const s = storage()
  const key = s?.getItem(KEY_STORAGE)
  const role = s?.getItem(ROLE_STORAGE)
  if (!key || (role !== 'operator' && role !== 'project')) return undefined
  return { key, role }
}

export function storeSession(session: StoredSession): void {
  storage()?.setItem(KEY_STORAGE, session.key)
  storage()?.setItem(ROLE_STORAGE, session.role)
}

export function clearStoredSession(): void {
  storage()?.removeItem(KEY_STORAGE)
  storage()?.removeItem(ROLE_STORAGE)
}

export const SessionContext = createContext<Session | null>(null)

export function useSession(): Session {
  const s = useContext(SessionContext)
  if (!s) throw new Error('useSession outside a signed-in app')
  return s
}

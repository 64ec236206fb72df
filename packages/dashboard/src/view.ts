import { createContext, useContext } from 'react'
import type { Scope } from './api/client.js'
import type { ViewState } from './lib/url-state.js'

export interface View {
  state: ViewState
  /** Changes the view state (kept in the URL; a new history entry unless `replace`). */
  set: (patch: Partial<ViewState>, options?: { replace?: boolean }) => void
  /** The view's query string, for links to other pages ('?from=…'). */
  query: string
  /**
   * The analytics scope: `{}` for a project key, `{project}` for the operator once a project is
   * chosen, undefined while none is (the operator's project list is still loading, or empty).
   */
  scope: Scope | undefined
}

export const ViewContext = createContext<View | null>(null)

export function useView(): View {
  const v = useContext(ViewContext)
  if (!v) throw new Error('useView outside the app')
  return v
}

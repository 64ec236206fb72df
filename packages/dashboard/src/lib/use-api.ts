import { useCallback, useEffect, useRef, useState } from 'react'
import type { ApiError } from '../api/errors.js'
import { toApiError } from '../api/errors.js'
import { useSession } from '../session.js'

export interface ApiState<T> {
  data: T | undefined
  error: ApiError | undefined
  /** True while the first answer for the current inputs is awaited (not on silent refreshes). */
  loading: boolean
  /** Asks again now (silently when data is already shown). */
  reload: () => void
}

export interface UseApiOptions {
  /** Re-fetch every this many ms, silently (no loading state), while the page is visible. */
  refreshMs?: number | undefined
  /** False: do nothing (e.g. until the project is known). @defaultValue true */
  enabled?: boolean
}

/**
 * Runs `load` whenever `key` changes (aborting the previous call) and every `refreshMs`.
 * A 401 signs the user out: the key was revoked or the operator token changed.
 */
export function useApi<T>(
  key: string,
  load: (signal: AbortSignal) => Promise<T>,
  options: UseApiOptions = {},
): ApiState<T> {
  const { signOut } = useSession()
  const enabled = options.enabled ?? true
  const [state, setState] = useState<{ key: string; data?: T; error?: ApiError; loading: boolean }>(
    { key, loading: enabled },
  )
  const loadRef = useRef(load)
  loadRef.current = load
  const [tick, setTick] = useState(0)
  const reload = useCallback(() => setTick((t) => t + 1), [])

  useEffect(() => {
    if (!enabled) return
    const controller = new AbortController()
    setState((s) => (s.key === key ? s : { key, loading: true }))
    loadRef.current(controller.signal).then(
      (data) => {
        if (!controller.signal.aborted) setState({ key, data, loading: false })
      },
      (err: unknown) => {
        if (controller.signal.aborted) return
        const e = toApiError(err)
        if (e.unauthorized) signOut('Invalid key: the service no longer accepts it')
        setState((s) => ({
          key,
          data: s.key === key ? s.data : undefined,
          error: e,
          loading: false,
        }))
      },
    )
    return () => controller.abort()
  }, [key, tick, enabled, signOut])

  useEffect(() => {
    const every = options.refreshMs
    if (!enabled || !every) return
    const id = window.setInterval(() => {
      if (document.visibilityState === 'visible') reload()
    }, every)
    return () => window.clearInterval(id)
  }, [options.refreshMs, enabled, reload])

  const current = state.key === key
  return {
    data: current ? state.data : undefined,
    error: current ? state.error : undefined,
    loading: enabled && (!current || state.loading),
    reload,
  }
}

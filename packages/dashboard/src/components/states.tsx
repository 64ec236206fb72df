import type { ReactNode } from 'react'
import type { ApiError } from '../api/errors.js'
import { useSession } from '../session.js'

/** A spinner announced as a progress bar while the first answer is awaited. */
export function Loading({ label = 'Loading' }: { label?: string }) {
  return (
    <div className="loading" role="progressbar" aria-label={label} aria-busy="true">
      <span className="spinner" aria-hidden="true" />
      {label}…
    </div>
  )
}

export function Empty({ children }: { children?: ReactNode }) {
  return <p className="empty">No data{children ? <>: {children}</> : null}</p>
}

/** The service's error, code first, as an alert. */
export function ErrorBox({ error, onRetry }: { error: ApiError; onRetry?: () => void }) {
  return (
    <div className="error" role="alert">
      <strong>{error.code}</strong> {error.message}
      {onRetry ? (
        <button type="button" className="link-button" onClick={onRetry}>
          Retry
        </button>
      ) : null}
    </div>
  )
}

interface AsyncProps<T> {
  state: { data: T | undefined; error: ApiError | undefined; loading: boolean; reload: () => void }
  /** True when the data has nothing to show. */
  isEmpty?: (data: T) => boolean
  empty?: ReactNode
  children: (data: T) => ReactNode
}

/** Loading, error, empty or the content, for one API answer. */
export function Async<T>({ state, isEmpty, empty, children }: AsyncProps<T>) {
  const { data, error, loading } = state
  return (
    <>
      {error ? <ErrorBox error={error} onRetry={state.reload} /> : null}
      {data === undefined ? (
        loading ? (
          <Loading />
        ) : null
      ) : isEmpty?.(data) ? (
        <Empty>{empty}</Empty>
      ) : (
        children(data)
      )}
    </>
  )
}

/** The message for pages a project key may not see. */
export function OperatorOnly() {
  return (
    <p className="notice" role="status">
      These pages need the operator token (STRATA_ADMIN_TOKEN): a project's admin key reads only its
      own project's analytics. Sign out and sign in with the operator token to see them.
    </p>
  )
}

/** A page for the operator token only: its heading, then the content or the notice. */
export function OperatorPage({ title, children }: { title: string; children: ReactNode }) {
  const { role } = useSession()
  return (
    <>
      <h1>{title}</h1>
      {role === 'operator' ? children : <OperatorOnly />}
    </>
  )
}

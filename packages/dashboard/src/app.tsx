import { useCallback, useEffect, useMemo, useState } from 'react'
import { ApiClient } from './api/client.js'
import { ErrorBox, Loading } from './components/states.js'
import { applyTheme, initialTheme, type Theme } from './lib/theme.js'
import { localTimeZone } from './lib/time.js'
import { useApi } from './lib/use-api.js'
import { parseViewState, serializeViewState, type ViewState } from './lib/url-state.js'
import { ImportsPage } from './pages/imports.js'
import { OverviewPage } from './pages/overview.js'
import { PerformancePage } from './pages/performance.js'
import { RecentLoginsPage } from './pages/recent-logins.js'
import { SessionsPage } from './pages/sessions.js'
import { UsersPage, UserTimelinePage } from './pages/users.js'
import { Link, navigate, useLocation } from './router.js'
import {
  clearStoredSession,
  loadStoredSession,
  SessionContext,
  storeSession,
  useSession,
  type Session,
  type StoredSession,
} from './session.js'
import { SignIn } from './sign-in.js'
import { ViewContext, type View } from './view.js'

const NAV = [
  { to: '/', label: 'Overview' },
  { to: '/logins', label: 'Recent logins' },
  { to: '/users', label: 'Users' },
  { to: '/sessions', label: 'Sessions' },
  { to: '/imports', label: 'Imports' },
  { to: '/performance', label: 'Performance' },
] as const

export function App() {
  const [stored, setStored] = useState<StoredSession | undefined>(loadStoredSession)
  const [notice, setNotice] = useState<string | undefined>()
  const signOut = useCallback((message?: string) => {
    clearStoredSession()
    setNotice(message)
    setStored(undefined)
  }, [])
  const session = useMemo<Session | undefined>(
    () =>
      stored
        ? { client: new ApiClient({ key: stored.key }), role: stored.role, signOut }
        : undefined,
    [stored, signOut],
  )
  if (!session)
    return (
      <SignIn
        notice={notice}
        onSignedIn={(s) => {
          storeSession(s)
          setNotice(undefined)
          setStored(s)
        }}
      />
    )
  return (
    <SessionContext.Provider value={session}>
      <Shell />
    </SessionContext.Provider>
  )
}

function Shell() {
  const { client, role, signOut } = useSession()
  const location = useLocation()
  const [theme, setTheme] = useState<Theme>(initialTheme)
  useEffect(() => applyTheme(theme), [theme])

  const state = useMemo(() => {
    const s = parseViewState(location.search, Date.now(), localTimeZone())
    if (role === 'project') delete s.project // a project key reads its own project only
    return s
  }, [location.search, role])

  const projects = useApi('projects', (signal) => client.projects(signal), {
    enabled: role === 'operator',
  })
  const firstProject = projects.data?.items[0]?.id

  // The URL always carries the whole view (so a copied URL reproduces it); the operator's
  // default project is the first one.
  useEffect(() => {
    const full: ViewState =
      role === 'operator' && !state.project && firstProject
        ? { ...state, project: firstProject }
        : state
    const search = serializeViewState(full, location.search)
    if (search !== location.search) navigate(location.path + search, { replace: true })
  }, [state, location.path, location.search, role, firstProject])

  const view = useMemo<View>(
    () => ({
      state,
      set: (patch, options) =>
        navigate(
          location.path + serializeViewState({ ...state, ...patch }, location.search),
          options,
        ),
      query: serializeViewState(state),
      scope:
        role === 'project'
          ? {}
          : (state.project ?? firstProject)
            ? { project: state.project ?? firstProject }
            : undefined,
    }),
    [state, location.path, location.search, role, firstProject],
  )

  const current = NAV.find((n) =>
    n.to === '/'
      ? location.path === '/'
      : location.path === n.to || location.path.startsWith(`${n.to}/`),
  )
  // Analytics pages need a project: without one in the URL, the operator's list must give one.
  const waitingForProject =
    view.scope === undefined && current?.to !== '/imports' && current?.to !== '/performance'
  return (
    <ViewContext.Provider value={view}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">Strata</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.to}>
                <Link to={n.to + view.query} aria-current={n === current ? 'page' : undefined}>
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="tools">
          {role === 'operator' ? (
            <label className="project">
              Project
              <select
                value={state.project ?? ''}
                disabled={!projects.data}
                onChange={(e) => view.set({ project: e.target.value })}
              >
                {!state.project ? (
                  <option value="">{projects.loading ? 'loading…' : 'none'}</option>
                ) : null}
                {state.project && !projects.data?.items.some((p) => p.id === state.project) ? (
                  <option value={state.project}>{state.project}</option>
                ) : null}
                {projects.data?.items.map((p) => (
                  <option key={p.id} value={p.id}>
                    {p.name}
                  </option>
                ))}
              </select>
            </label>
          ) : (
            <span className="muted small">project key</span>
          )}
          <button
            type="button"
            aria-label="Toggle theme"
            title={`Switch to the ${theme === 'dark' ? 'light' : 'dark'} theme`}
            onClick={() => {
              const next = theme === 'dark' ? 'light' : 'dark'
              applyTheme(next, true)
              setTheme(next)
            }}
          >
            <span aria-hidden="true">{theme === 'dark' ? '☀' : '☾'}</span>
          </button>
          <button type="button" onClick={() => signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {waitingForProject ? (
          <>
            <h1>{current?.label ?? 'Not found'}</h1>
            {projects.error ? (
              <ErrorBox error={projects.error} onRetry={projects.reload} />
            ) : !projects.data ? (
              <Loading label="Loading projects" />
            ) : (
              <p className="empty">
                No data: there is no project yet. Create one with{' '}
                <code>strata projects create &lt;name&gt;</code> or <code>POST /v1/projects</code>.
              </p>
            )}
          </>
        ) : (
          <Page path={location.path} />
        )}
      </main>
    </ViewContext.Provider>
  )
}

function Page({ path }: { path: string }) {
  if (path === '/') return <OverviewPage />
  if (path === '/logins') return <RecentLoginsPage />
  if (path === '/users') return <UsersPage />
  if (path.startsWith('/users/')) {
    let id = path.slice('/users/'.length)
    try {
      id = decodeURIComponent(id)
    } catch {
      // keep it as written
    }
    return <UserTimelinePage key={id} userId={id} />
  }
  if (path === '/sessions') return <SessionsPage />
  if (path === '/imports') return <ImportsPage />
  if (path === '/performance') return <PerformancePage />
  return (
    <>
      <h1>Not found</h1>
      <p>
        No page at this address. <Link to="/">Go to the Overview</Link>.
      </p>
    </>
  )
}

// A tiny history router (a few dozen lines instead of a router library): the app has six
// routes and one parameter. Paths are relative to the base the app is served under.
import {
  createElement,
  useSyncExternalStore,
  type AnchorHTMLAttributes,
  type MouseEvent,
} from 'react'

/** '/dashboard' (Vite's base without its trailing slash). */
export const BASE = import.meta.env.BASE_URL.replace(/\/$/, '')

const NAVIGATE = 'strata:navigate'

function subscribe(onChange: () => void): () => void {
  window.addEventListener('popstate', onChange)
  window.addEventListener(NAVIGATE, onChange)
  return () => {
    window.removeEventListener('popstate', onChange)
    window.removeEventListener(NAVIGATE, onChange)
  }
}

const snapshot = () => window.location.pathname + window.location.search

export interface AppLocation {
  /** Path under the base, always starting with '/': '/', '/logins', '/users/u1'. */
  path: string
  /** Query string with its '?', or ''. */
  search: string
}

/** Splits a browser path into the app's path (under BASE) and search. */
export function appLocation(pathname: string, search: string): AppLocation {
  let path = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname
  if (!path.startsWith('/')) path = `/${path}`
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1)
  return { path, search }
}

export function useLocation(): AppLocation {
  const s = useSyncExternalStore(subscribe, snapshot)
  const q = s.indexOf('?')
  return appLocation(q === -1 ? s : s.slice(0, q), q === -1 ? '' : s.slice(q))
}

/** Goes to an app path (with its query); `replace` rewrites the current history entry. */
export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const url = BASE + (to.startsWith('/') ? to : `/${to}`)
  if (url === window.location.pathname + window.location.search) return
  if (options.replace) window.history.replaceState(null, '', url)
  else window.history.pushState(null, '', url)
  window.dispatchEvent(new Event(NAVIGATE))
}

type LinkProps = Omit<AnchorHTMLAttributes<HTMLAnchorElement>, 'href'> & { to: string }

/** An <a> with a real href (open in a new tab works) that navigates in place on a plain click. */
export function Link({ to, onClick, ...rest }: LinkProps) {
  return createElement('a', {
    ...rest,
    href: BASE + to,
    onClick(e: MouseEvent<HTMLAnchorElement>) {
      onClick?.(e)
      if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey)
        return
      e.preventDefault()
      navigate(to)
      window.scrollTo(0, 0)
    },
  })
}

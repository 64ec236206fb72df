import { useState, type FormEvent } from 'react'
import { ApiClient, detectRole } from './api/client.js'
import { toApiError } from './api/errors.js'
import type { StoredSession } from './session.js'

interface SignInProps {
  onSignedIn: (s: StoredSession) => void
  /** Why the previous session ended (e.g. the key was revoked). */
  notice?: string | undefined
}

export function SignIn({ onSignedIn, notice }: SignInProps) {
  const [key, setKey] = useState('')
  const [error, setError] = useState<string | undefined>(notice)
  const [busy, setBusy] = useState(false)

  const submit = async (e: FormEvent) => {
    e.preventDefault()
    const k = key.trim()
    if (!k) {
      setError('Invalid key: enter the operator token or a project admin key')
      return
    }
    setBusy(true)
    setError(undefined)
    try {
      const role = await detectRole(new ApiClient({ key: k }))
      onSignedIn({ key: k, role })
    } catch (err) {
      const a = toApiError(err)
      setError(
        a.status === 401 ? `Invalid key (${a.code}: ${a.message})` : `${a.code}: ${a.message}`,
      )
      setBusy(false)
    }
  }

  return (
    <main className="signin" id="main">
      <form aria-label="Sign in" onSubmit={(e) => void submit(e)} aria-busy={busy}>
        <h1>Strata dashboard</h1>
        <p className="muted">
          Sign in with the operator token (STRATA_ADMIN_TOKEN) or a project&apos;s admin key. The
          key stays in this tab only.
        </p>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={key}
          onChange={(e) => setKey(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'signin-error' : undefined}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error ? (
          <p className="error" role="alert" id="signin-error">
            {error}
          </p>
        ) : null}
      </form>
    </main>
  )
}

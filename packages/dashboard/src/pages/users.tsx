import { useEffect, useState } from 'react'
import { Async, ErrorBox } from '../components/states.js'
import { RangeControls } from '../components/range-controls.js'
import { DataTable, type Column } from '../components/data-table.js'
import { formatInstant } from '../lib/time.js'
import { toApiError, type ApiError } from '../api/errors.js'
import { useApi } from '../lib/use-api.js'
import { navigate } from '../router.js'
import { useSession } from '../session.js'
import { useView } from '../view.js'
import type { UserActivityItem } from '../api/types.js'

const PAGE = 50
const LOGINS = 20
const ACTIVITY_COLUMNS: Column[] = ['Time', 'Action', 'Entity', 'Session', 'Metadata']
const LOGIN_COLUMNS: Column[] = ['Time', 'Method', 'Result', 'Device', 'IP']

/** "User id" + "Show": opens /users/<id> with the current view. */
function UserSearch({ initial }: { initial: string }) {
  const { query } = useView()
  const [draft, setDraft] = useState(initial)
  useEffect(() => setDraft(initial), [initial])
  return (
    <form
      className="controls"
      aria-label="Find a user"
      onSubmit={(e) => {
        e.preventDefault()
        const id = draft.trim()
        if (id) navigate(`/users/${encodeURIComponent(id)}${query}`)
      }}
    >
      <label>
        User id
        <input
          type="search"
          value={draft}
          required
          maxLength={255}
          placeholder="e.g. user_42"
          onChange={(e) => setDraft(e.target.value)}
        />
      </label>
      <button type="submit">Show</button>
    </form>
  )
}

export function UsersPage() {
  return (
    <>
      <h1>Users</h1>
      <UserSearch initial="" />
      <p className="muted">
        Enter a user id to see that user's activity timeline, newest first, or follow a user link in
        Recent logins.
      </p>
    </>
  )
}

export function UserTimelinePage({ userId }: { userId: string }) {
  const { client } = useSession()
  const { state, scope } = useView()
  const first = useApi(
    JSON.stringify([scope, userId]),
    (signal) => client.userActivity(userId, { limit: PAGE, ...scope }, signal),
    { enabled: scope !== undefined },
  )
  // Further keyset pages, appended below the first; reset when the user or project changes.
  const [more, setMore] = useState<{ items: UserActivityItem[]; next: string | null } | null>(null)
  const [moreError, setMoreError] = useState<ApiError | undefined>()
  const [busy, setBusy] = useState(false)
  useEffect(() => {
    setMore(null)
    setMoreError(undefined)
  }, [first.data])

  const loadMore = async (cursor: string) => {
    setBusy(true)
    setMoreError(undefined)
    try {
      const page = await client.userActivity(userId, { limit: PAGE, cursor, ...scope })
      setMore((m) => ({ items: [...(m?.items ?? []), ...page.items], next: page.nextCursor }))
    } catch (err) {
      setMoreError(toApiError(err))
    } finally {
      setBusy(false)
    }
  }

  return (
    <>
      <h1>User {userId}</h1>
      <UserSearch initial={userId} />
      <RangeControls note="The latest entries, whatever the range; times in the chosen zone." />
      <section aria-label="Activity" aria-busy={first.loading}>
        <Async state={first}>
          {(page) => {
            const items = [...page.items, ...(more?.items ?? [])]
            const next = more ? more.next : page.nextCursor
            return (
              <>
                <DataTable
                  label="Activity table"
                  card
                  caption={
                    <>
                      Activity <span className="muted">(newest first; times in {state.tz})</span>
                    </>
                  }
                  columns={ACTIVITY_COLUMNS}
                  rows={items}
                >
                  {(a) => (
                    <tr key={a.messageId} data-testid="activity-row">
                      <td className="nowrap">{formatInstant(a.timestamp, state.tz)}</td>
                      <td>{a.action}</td>
                      <td>
                        {a.entityType ?? '—'}
                        {a.entityId ? <span className="muted"> {a.entityId}</span> : null}
                      </td>
                      <td className="mono small">{a.sessionId ?? '—'}</td>
                      <td className="mono small clip">
                        {a.metadata === null || a.metadata === undefined
                          ? '—'
                          : JSON.stringify(a.metadata)}
                      </td>
                    </tr>
                  )}
                </DataTable>
                {moreError ? <ErrorBox error={moreError} /> : null}
                {next ? (
                  <button
                    type="button"
                    className="more"
                    disabled={busy}
                    onClick={() => void loadMore(next)}
                  >
                    Load more
                  </button>
                ) : null}
              </>
            )
          }}
        </Async>
      </section>
      <UserLogins userId={userId} />
    </>
  )
}

/** The user's latest logins (the service filters recent-logins by userId). */
function UserLogins({ userId }: { userId: string }) {
  const { client } = useSession()
  const { state, scope } = useView()
  const logins = useApi(
    JSON.stringify([scope, userId, 'logins']),
    (signal) => client.recentLogins({ limit: LOGINS, userId, ...scope }, signal),
    { enabled: scope !== undefined },
  )
  return (
    <section aria-label="Logins" aria-busy={logins.loading}>
      <Async state={logins}>
        {(page) => {
          // Kept to this user even where the service ignores userId (older versions).
          const items = page.items.filter((l) => l.userId === userId)
          return (
            <DataTable
              label="Logins table"
              card
              caption={
                <>
                  Logins{' '}
                  <span className="muted">
                    (latest {LOGINS}; times in {state.tz})
                  </span>
                </>
              }
              columns={LOGIN_COLUMNS}
              rows={items}
            >
              {(l) => (
                <tr key={l.messageId}>
                  <td className="nowrap">{formatInstant(l.timestamp, state.tz)}</td>
                  <td>{l.method}</td>
                  <td>
                    <span className={`pill ${l.success ? 'ok' : 'bad'}`}>
                      {l.success ? 'success' : 'failure'}
                    </span>
                    {l.failureReason ? (
                      <span className="muted small"> {l.failureReason}</span>
                    ) : null}
                  </td>
                  <td>
                    {l.deviceType}
                    {l.browser ? <span className="muted"> · {l.browser}</span> : null}
                  </td>
                  <td className="nowrap">{l.ip ?? '—'}</td>
                </tr>
              )}
            </DataTable>
          )
        }}
      </Async>
    </section>
  )
}

import { useState } from 'react'
import { DataTable, type Column } from '../components/data-table.js'
import { RangeControls } from '../components/range-controls.js'
import { Async } from '../components/states.js'
import {
  KNOWN_METHODS,
  loginFilterParams,
  matchesLoginFilter,
  parseLoginFilter,
  writeLoginFilter,
  type LoginFilter,
  type ResultFilter,
} from '../lib/login-filter.js'
import { formatInstant } from '../lib/time.js'
import { useApi } from '../lib/use-api.js'
import { Link, navigate, useLocation } from '../router.js'
import { useSession } from '../session.js'
import { useView } from '../view.js'

const LIVE_MS = 5000
const LIMIT = 50
const COLUMNS: Column[] = ['Time', 'User', 'Method', 'Result', 'Device', 'Browser', 'OS', 'IP']

export function RecentLoginsPage() {
  const { client } = useSession()
  const { state, scope, query } = useView()
  const location = useLocation()
  const filter = parseLoginFilter(location.search)
  const [live, setLive] = useState(true)
  const [userDraft, setUserDraft] = useState(filter.userId)
  const setFilter = (patch: Partial<LoginFilter>) =>
    navigate(location.path + writeLoginFilter(location.search, { ...filter, ...patch }), {
      replace: true,
    })
  const params = loginFilterParams(filter)
  const logins = useApi(
    JSON.stringify([scope, params]),
    (signal) => client.recentLogins({ limit: LIMIT, ...scope, ...params }, signal),
    { enabled: scope !== undefined, refreshMs: live ? LIVE_MS : undefined },
  )
  const methods = [
    ...new Set([...KNOWN_METHODS, ...(logins.data?.items.map((l) => l.method) ?? [])]),
  ]
  if (filter.method && !methods.includes(filter.method)) methods.push(filter.method)

  return (
    <>
      <h1>Recent logins</h1>
      <RangeControls note="The latest entries, whatever the range; times in the chosen zone." />
      <form
        className="controls"
        aria-label="Filter logins"
        onSubmit={(e) => {
          e.preventDefault()
          setFilter({ userId: userDraft.trim() })
        }}
      >
        <label>
          Method
          <select value={filter.method} onChange={(e) => setFilter({ method: e.target.value })}>
            <option value="">all</option>
            {methods.sort().map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <label>
          Result
          <select
            value={filter.result}
            onChange={(e) => setFilter({ result: e.target.value as ResultFilter })}
          >
            <option value="all">all</option>
            <option value="success">success</option>
            <option value="failure">failure</option>
          </select>
        </label>
        <label>
          User id
          <input
            type="search"
            value={userDraft}
            placeholder="any user"
            onChange={(e) => setUserDraft(e.target.value)}
            onBlur={() =>
              userDraft.trim() !== filter.userId && setFilter({ userId: userDraft.trim() })
            }
          />
        </label>
        <label className="checkbox">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.target.checked)} />
          Live
        </label>
      </form>
      <section aria-label="Logins" aria-busy={logins.loading}>
        <Async state={logins}>
          {(page) => {
            const items = page.items.filter((l) => matchesLoginFilter(l, filter))
            return (
              <DataTable
                label="Recent logins table"
                card
                caption={
                  <>
                    Recent logins{' '}
                    <span className="muted">
                      (latest {LIMIT}
                      {live ? ', refreshed every 5 s' : ''}; times in {state.tz})
                    </span>
                  </>
                }
                columns={COLUMNS}
                rows={items}
              >
                {(l) => (
                  <tr key={l.messageId} data-testid="login-row">
                    <td className="nowrap">{formatInstant(l.timestamp, state.tz)}</td>
                    <td>
                      <Link to={`/users/${encodeURIComponent(l.userId)}${query}`}>{l.userId}</Link>
                      {l.email ? <div className="muted small">{l.email}</div> : null}
                    </td>
                    <td>{l.method}</td>
                    <td>
                      {l.success ? (
                        <span className="pill ok">success</span>
                      ) : (
                        <>
                          <span className="pill bad">failure</span>
                          {l.failureReason ? (
                            <div className="muted small">{l.failureReason}</div>
                          ) : null}
                        </>
                      )}
                    </td>
                    <td>{l.deviceType}</td>
                    <td>{l.browser ?? '—'}</td>
                    <td>{l.os ?? '—'}</td>
                    <td className="nowrap">{l.ip ?? '—'}</td>
                  </tr>
                )}
              </DataTable>
            )
          }}
        </Async>
      </section>
    </>
  )
}

import { Kpi } from '../components/kpi.js'
import { RangeControls } from '../components/range-controls.js'
import { Async } from '../components/states.js'
import { formatCount, formatDuration } from '../lib/format.js'
import { dayRange } from '../lib/time.js'
import { useApi } from '../lib/use-api.js'
import { useSession } from '../session.js'
import { useView } from '../view.js'

export function SessionsPage() {
  const { client } = useSession()
  const { state, scope } = useView()
  const q = { ...dayRange(state.from, state.to, state.tz), tz: state.tz, ...scope }
  const sessions = useApi(JSON.stringify(q), (signal) => client.sessions(q, signal), {
    enabled: scope !== undefined,
    refreshMs: 30_000,
  })
  return (
    <>
      <h1>Sessions</h1>
      <RangeControls />
      <section aria-label="Sessions" aria-busy={sessions.loading}>
        <Async state={sessions}>
          {(s) => (
            <div className="kpis">
              <Kpi
                label="Active sessions"
                value={formatCount(s.active)}
                testId="kpi-active-sessions"
                sub="now: not ended, not expired"
              />
              <Kpi
                label="Average length"
                value={formatDuration(s.averageLengthSeconds)}
                testId="kpi-average-length"
                sub="sessions created in the range (until ended, else last activity)"
              />
              <Kpi label="Created" value={formatCount(s.created)} sub="in the range" />
              <Kpi label="Ended" value={formatCount(s.ended)} sub="of those created in the range" />
            </div>
          )}
        </Async>
      </section>
    </>
  )
}

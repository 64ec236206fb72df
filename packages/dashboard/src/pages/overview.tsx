import { useMemo } from 'react'
import { BarList } from '../components/bar-list.js'
import { Kpi } from '../components/kpi.js'
import { RangeControls } from '../components/range-controls.js'
import { Async } from '../components/states.js'
import { TimeChart, type ChartSeries } from '../components/time-chart.js'
import { formatCount, formatPercent, shares } from '../lib/format.js'
import { dayRange } from '../lib/time.js'
import { useApi } from '../lib/use-api.js'
import { useSession } from '../session.js'
import { useView } from '../view.js'
import type { ActiveUsers, LoginAnalytics } from '../api/types.js'

export function OverviewPage() {
  const { client } = useSession()
  const { state, scope } = useView()
  const range = dayRange(state.from, state.to, state.tz)
  const q = { ...range, tz: state.tz, ...scope }
  const key = JSON.stringify([q, state.interval])
  const logins = useApi(
    key,
    (signal) => client.logins({ ...q, interval: state.interval }, signal),
    {
      enabled: scope !== undefined,
    },
  )
  const active = useApi(key, (signal) => client.activeUsers(q, signal), {
    enabled: scope !== undefined,
  })
  return (
    <>
      <h1>Overview</h1>
      <RangeControls interval />
      <section aria-label="Logins" aria-busy={logins.loading}>
        <Async
          state={logins}
          isEmpty={(d) => d.totals.logins === 0}
          empty="no logins in this range"
        >
          {(d) => <Logins data={d} interval={state.interval} tz={state.tz} />}
        </Async>
      </section>
      <section aria-label="Active users" aria-busy={active.loading}>
        <Async state={active}>{(d) => <Active data={d} tz={state.tz} />}</Async>
      </section>
    </>
  )
}

function Logins({ data, interval, tz }: { data: LoginAnalytics; interval: string; tz: string }) {
  const t = data.totals
  const starts = useMemo(() => data.series.map((p) => p.start), [data])
  const series = useMemo<ChartSeries[]>(
    () => [
      { label: 'Successes', values: data.series.map((p) => p.successes), color: '--ok' },
      { label: 'Failures', values: data.series.map((p) => p.failures), color: '--bad' },
    ],
    [data],
  )
  return (
    <>
      <div className="kpis">
        <Kpi label="Logins" value={formatCount(t.logins)} testId="kpi-total" />
        <Kpi
          label="Success rate"
          value={formatPercent(t.successRate)}
          testId="kpi-success-rate"
          tone={t.successRate < 0.8 ? 'bad' : undefined}
        />
        <Kpi label="Unique users" value={formatCount(t.uniqueUsers)} testId="kpi-unique-users" />
        <Kpi label="Failures" value={formatCount(t.failures)} testId="kpi-failures" />
      </div>
      <TimeChart
        caption={`Logins per ${interval}`}
        starts={starts}
        series={series}
        kind="stacked-bars"
        tz={tz}
      />
      <div className="grid-2">
        <BarList caption="Methods" counts={data.byMethod} />
        <BarList caption="Devices" counts={data.byDevice} />
      </div>
      <div className="grid-2">
        <ShareTable caption="Browsers" counts={data.byBrowser} />
        <ShareTable caption="Operating systems" counts={data.byOs} />
      </div>
    </>
  )
}

function ShareTable({ caption, counts }: { caption: string; counts: Record<string, number> }) {
  const rows = shares(counts)
  return (
    <div className="card table-wrap">
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col" className="num">
              Logins
            </th>
            <th scope="col" className="num">
              Share
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <tr>
              <td colSpan={3} className="empty">
                No data
              </td>
            </tr>
          ) : (
            rows.map(([name, n, share]) => (
              <tr key={name}>
                <td>{name}</td>
                <td className="num">{formatCount(n)}</td>
                <td className="num">{formatPercent(share)}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  )
}

function Active({ data, tz }: { data: ActiveUsers; tz: string }) {
  const starts = useMemo(() => data.series.map((p) => p.start), [data])
  const series = useMemo<ChartSeries[]>(
    () => [
      { label: 'Daily', values: data.series.map((p) => p.dau), color: '--c1' },
      { label: 'Weekly', values: data.series.map((p) => p.wau), color: '--c2' },
      { label: 'Monthly', values: data.series.map((p) => p.mau), color: '--c3' },
    ],
    [data],
  )
  return (
    <>
      <div className="kpis">
        <Kpi label="Daily active users" value={formatCount(data.dau)} sub="on the last day" />
        <Kpi
          label="Weekly active users"
          value={formatCount(data.wau)}
          sub="7 days to the last day"
        />
        <Kpi
          label="Monthly active users"
          value={formatCount(data.mau)}
          sub="30 days to the last day"
        />
      </div>
      <TimeChart caption="Active users" starts={starts} series={series} kind="lines" tz={tz} />
    </>
  )
}

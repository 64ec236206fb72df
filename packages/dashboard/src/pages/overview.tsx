import { useMemo } from 'react'
import { BarList } from '../components/bar-list.js'
import { DataTable, type Column } from '../components/data-table.js'
import { Kpi } from '../components/kpi.js'
import { RangeControls } from '../components/range-controls.js'
import { Async, Loading } from '../components/states.js'
import { TimeChart, type ChartSeries } from '../components/time-chart.js'
import { formatCount, formatPercent, shares } from '../lib/format.js'
import { dayRange } from '../lib/time.js'
import { useApi } from '../lib/use-api.js'
import { useSession } from '../session.js'
import { useView } from '../view.js'
import type { ActiveUsers, LoginAnalytics, LoginSeriesPoint } from '../api/types.js'

export function OverviewPage() {
  const { client } = useSession()
  const { state, scope } = useView()
  const range = dayRange(state.from, state.to, state.tz)
  const q = { ...range, tz: state.tz, interval: state.interval, ...scope }
  const key = JSON.stringify(q)
  const enabled = scope !== undefined
  // Two calls: without the distinct-user count (rollups only, a few ms) for a fast first
  // paint, and the full answer, which replaces it when it lands (issued second, on purpose).
  const quick = useApi(
    `${key}:quick`,
    (signal) => client.logins({ ...q, uniques: false }, signal),
    {
      enabled,
    },
  )
  const full = useApi(key, (signal) => client.logins(q, signal), { enabled })
  const active = useApi(key, (signal) => client.activeUsers(q, signal), { enabled })
  const logins = {
    data: full.data ?? quick.data,
    error: full.error ?? (full.data ? undefined : quick.error),
    loading: full.loading && !quick.data,
    reload: full.reload,
  }
  return (
    <>
      <h1>Overview</h1>
      <RangeControls interval />
      <section aria-label="Logins" aria-busy={full.loading}>
        <Async
          state={logins}
          isEmpty={(d) => d.totals.logins === 0}
          empty="no logins in this range"
        >
          {(d) => (
            <Logins
              data={d}
              uniques={full.data ? 'done' : full.loading ? 'pending' : 'failed'}
              interval={state.interval}
              tz={state.tz}
            />
          )}
        </Async>
      </section>
      <section aria-label="Active users" aria-busy={active.loading}>
        <Async state={active}>{(d) => <Active data={d} tz={state.tz} />}</Async>
      </section>
    </>
  )
}

interface LoginsProps {
  data: LoginAnalytics
  /** Whether `data` has the distinct-user count yet. */
  uniques: 'done' | 'pending' | 'failed'
  interval: string
  tz: string
}

/** One line (or bar layer) of a chart: its label, colour and value at each point. */
interface Line<P> {
  label: string
  color: string
  value: (point: P) => number
}

const LOGIN_LINES: Line<LoginSeriesPoint>[] = [
  { label: 'Successes', color: '--ok', value: (p) => p.successes },
  { label: 'Failures', color: '--bad', value: (p) => p.failures },
]
const ACTIVE_LINES: Line<ActiveUsers['series'][number]>[] = [
  { label: 'Daily', color: '--c1', value: (p) => p.dau },
  { label: 'Weekly', color: '--c2', value: (p) => p.wau },
  { label: 'Monthly', color: '--c3', value: (p) => p.mau },
]

/** TimeChart's bucket starts and series from an answer's points (remade when they change). */
function useChart<P extends { start: string }>(points: P[], lines: Line<P>[]) {
  return useMemo(
    () => ({
      starts: points.map((p) => p.start),
      series: lines.map((l): ChartSeries => ({
        label: l.label,
        values: points.map(l.value),
        color: l.color,
      })),
    }),
    [points, lines],
  )
}

function Logins({ data, uniques, interval, tz }: LoginsProps) {
  const t = data.totals
  const { starts, series } = useChart(data.series, LOGIN_LINES)
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
        {uniques === 'pending' ? (
          <div className="kpi">
            <span className="kpi-label">Unique users</span>
            <Loading label="Counting" />
          </div>
        ) : (
          <Kpi
            label="Unique users"
            value={uniques === 'done' ? formatCount(t.uniqueUsers) : '—'}
            testId="kpi-unique-users"
          />
        )}
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

const SHARE_COLUMNS: Column[] = [
  'Name',
  { label: 'Logins', num: true },
  { label: 'Share', num: true },
]

function ShareTable({ caption, counts }: { caption: string; counts: Record<string, number> }) {
  return (
    <DataTable label={caption} card caption={caption} columns={SHARE_COLUMNS} rows={shares(counts)}>
      {([name, n, share]) => (
        <tr key={name}>
          <td>{name}</td>
          <td className="num">{formatCount(n)}</td>
          <td className="num">{formatPercent(share)}</td>
        </tr>
      )}
    </DataTable>
  )
}

function Active({ data, tz }: { data: ActiveUsers; tz: string }) {
  const { starts, series } = useChart(data.series, ACTIVE_LINES)
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

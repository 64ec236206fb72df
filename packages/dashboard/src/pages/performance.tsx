import type { ReactNode } from 'react'
import { Kpi } from '../components/kpi.js'
import { DataTable, type Column } from '../components/data-table.js'
import { Async, Empty, OperatorPage } from '../components/states.js'
import type { CacheStats, HealthStatus, TierStats } from '../api/types.js'
import { formatBytes, formatCount, formatMs, formatPercent } from '../lib/format.js'
import { formatInstant } from '../lib/time.js'
import { useApi } from '../lib/use-api.js'
import { useSession } from '../session.js'
import { useView } from '../view.js'

const REFRESH_MS = 10_000

export function PerformancePage() {
  return (
    <OperatorPage title="Performance">
      <Sections />
    </OperatorPage>
  )
}

function Section({ title, busy, children }: { title: string; busy: boolean; children: ReactNode }) {
  const id = `perf-${title.toLowerCase().replace(/\W+/g, '-')}`
  return (
    <section className="card" aria-labelledby={id} aria-busy={busy}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  )
}

/** A <h3> and the list, or `none` when the list is empty. */
function Titled({ title, items, none }: { title: string; items: string[]; none?: ReactNode }) {
  return items.length ? (
    <>
      <h3>{title}</h3>
      <ul>
        {items.map((i) => (
          <li key={i}>{i}</li>
        ))}
      </ul>
    </>
  ) : (
    (none ?? null)
  )
}

/** A statement's SQL, focusable so that a long one can be scrolled by keyboard. */
function Sql({ children }: { children: string }) {
  return (
    <code className="sql" tabIndex={0}>
      {children}
    </code>
  )
}

const ALERT_COLUMNS: Column[] = ['Alert', 'State', 'Now', 'Since']
const SLOW_COLUMNS: Column[] = [{ label: 'Duration', num: true }, 'Label', 'Statement', 'At']
const DATABASE_COLUMNS: Column[] = [
  { label: 'Total', num: true },
  { label: 'Mean', num: true },
  { label: 'Calls', num: true },
  { label: 'Cache hit', num: true },
  'Statement',
]
const MONITOR_COLUMNS: Column[] = [
  { label: 'Total', num: true },
  { label: 'p95', num: true },
  { label: 'Count', num: true },
  'Statement',
]
const TIER_COLUMNS: Column[] = [
  'Tier',
  { label: 'Hit rate', num: true },
  { label: 'Hits', num: true },
  { label: 'Misses', num: true },
  { label: 'Entries', num: true },
  { label: 'Latency p99', num: true },
]

const tone = (s: HealthStatus): 'good' | 'bad' | undefined =>
  s === 'excellent' || s === 'good' ? 'good' : 'bad'

function Sections() {
  const { client } = useSession()
  const { state } = useView()
  const live = { refreshMs: REFRESH_MS }
  const health = useApi('health', (s) => client.health(s), live)
  const summary = useApi('summary', (s) => client.performance(s), live)
  const alerts = useApi('alerts', (s) => client.alerts(s), live)
  const slow = useApi('slow', (s) => client.slowQueries(20, s), live)
  const queries = useApi('queries', (s) => client.queries(10, s), live)
  // The advisor may run EXPLAINs with hypothetical indexes: ask once a minute at most.
  const indexes = useApi('indexes', (s) => client.indexSuggestions(s), { refreshMs: 60_000 })
  const pool = useApi('pool', (s) => client.pool(s), live)
  const cache = useApi('cache', (s) => client.cache(s), live)

  return (
    <div className="perf">
      <Section title="Health" busy={health.loading}>
        <Async state={health}>
          {(h) => (
            <>
              <div className="kpis">
                <Kpi
                  label={`Overall (${h.overall.status})`}
                  value={String(h.overall.score)}
                  testId="health-overall"
                  tone={tone(h.overall.status)}
                  sub="score out of 100"
                />
                {Object.entries(h.components).map(([name, c]) => (
                  <Kpi
                    key={name}
                    label={name}
                    value={c ? String(c.score) : '—'}
                    tone={c ? tone(c.status) : undefined}
                    sub={c ? c.status : 'not configured'}
                  />
                ))}
              </div>
              <Titled title="Issues" items={h.issues} none={<p className="muted">No issues.</p>} />
              <Titled title="Recommendations" items={h.recommendations} />
            </>
          )}
        </Async>
      </Section>

      <Section title="Alerts" busy={alerts.loading}>
        <Async state={alerts} isEmpty={(a) => a.alerts.length === 0}>
          {(a) => (
            <DataTable
              label="Alerts table"
              caption={a.firing.length ? `${a.firing.length} firing` : 'None firing'}
              columns={ALERT_COLUMNS}
              rows={a.alerts}
            >
              {(al) => (
                <tr key={al.name}>
                  <td className="mono small">{al.name}</td>
                  <td>
                    <span
                      className={`pill ${al.state === 'firing' ? 'bad' : al.state === 'ok' ? 'ok' : 'warn'}`}
                    >
                      {al.state}
                    </span>
                  </td>
                  <td>{al.message}</td>
                  <td className="nowrap">{formatInstant(al.since, state.tz)}</td>
                </tr>
              )}
            </DataTable>
          )}
        </Async>
      </Section>

      <Section title="Slow queries" busy={slow.loading}>
        <Async
          state={slow}
          isEmpty={(s) => s.items.length === 0}
          empty="no query over the threshold yet"
        >
          {(s) => (
            <DataTable
              label="Slow queries table"
              caption={
                <>
                  Over {formatMs(s.thresholdMs)}: {formatCount(s.slowCount)} (
                  {formatPercent(s.slowShare)} of recent queries)
                </>
              }
              columns={SLOW_COLUMNS}
              rows={s.items}
            >
              {(q, i) => (
                <tr key={`${q.at}-${i}`}>
                  <td className="num nowrap">{formatMs(q.durationMs)}</td>
                  <td className="small">{q.label ?? q.operation}</td>
                  <td>
                    <Sql>{q.sql}</Sql>
                  </td>
                  <td className="nowrap">{formatInstant(q.at, state.tz)}</td>
                </tr>
              )}
            </DataTable>
          )}
        </Async>
      </Section>

      <Section title="Top statements" busy={queries.loading}>
        <Async state={queries}>
          {(q) =>
            q.database.available ? (
              q.database.items.length === 0 ? (
                <Empty />
              ) : (
                <DataTable
                  label="Top statements table"
                  caption="By total time (pg_stat_statements, every client of the database)"
                  columns={DATABASE_COLUMNS}
                  rows={q.database.items}
                >
                  {(s) => (
                    <tr key={s.queryid}>
                      <td className="num nowrap">{formatMs(s.totalMs)}</td>
                      <td className="num nowrap">{formatMs(s.meanMs)}</td>
                      <td className="num">{formatCount(s.calls)}</td>
                      <td className="num">{formatPercent(s.cacheHitRatio)}</td>
                      <td>
                        <Sql>{s.query}</Sql>
                      </td>
                    </tr>
                  )}
                </DataTable>
              )
            ) : q.statements.length === 0 ? (
              <Empty />
            ) : (
              <DataTable
                label="Top statements table"
                caption={
                  <>
                    By total time, this service's queries
                    {q.database.message ? ` (${q.database.message})` : ''}
                  </>
                }
                columns={MONITOR_COLUMNS}
                rows={q.statements}
              >
                {(s) => (
                  <tr key={s.sql}>
                    <td className="num nowrap">{formatMs(s.totalMs)}</td>
                    <td className="num nowrap">{formatMs(s.p95)}</td>
                    <td className="num">{formatCount(s.count)}</td>
                    <td>
                      <Sql>{s.sql}</Sql>
                    </td>
                  </tr>
                )}
              </DataTable>
            )
          }
        </Async>
      </Section>

      <Section title="Index suggestions" busy={indexes.loading}>
        <Async
          state={indexes}
          isEmpty={(x) => x.suggestions.length === 0}
          empty="no index would help the statements seen so far"
        >
          {(x) => (
            <ol className="suggestions">
              {x.suggestions.map((s) => (
                <li key={s.create}>
                  <p>
                    <strong>
                      {s.schema}.{s.table}
                    </strong>{' '}
                    ({s.columns.join(', ')}){' '}
                    {s.improvement !== null ? (
                      <span className="pill ok">{s.improvement.toFixed(1)}× cheaper</span>
                    ) : (
                      <span className="pill warn">not verified</span>
                    )}
                  </p>
                  <p className="muted small">{s.reason}</p>
                  <pre>
                    <code>{s.create}</code>
                  </pre>
                </li>
              ))}
            </ol>
          )}
        </Async>
      </Section>

      <Section title="Pool" busy={pool.loading}>
        <Async state={pool}>
          {(p) => (
            <div className="kpis">
              <Kpi
                label="Utilization"
                value={formatPercent(p.utilization)}
                sub={`${p.active} active of ${p.max} max`}
                tone={p.utilization > 0.8 ? 'bad' : undefined}
              />
              <Kpi label="Connections" value={formatCount(p.total)} sub={`${p.idle} idle`} />
              <Kpi
                label="Waiting"
                value={formatCount(p.waiting)}
                tone={p.waiting > 0 ? 'bad' : undefined}
                sub="callers queued for a connection"
              />
              <Kpi
                label="Acquire wait p95"
                value={formatMs(p.acquireWait.p95)}
                sub={`p99 ${formatMs(p.acquireWait.p99)}`}
              />
            </div>
          )}
        </Async>
      </Section>

      <Section title="Cache" busy={cache.loading}>
        <Async state={cache}>{(c) => <CacheTiers stats={c} />}</Async>
      </Section>

      <Section title="Event loop" busy={summary.loading}>
        <Async state={summary}>
          {(s) => (
            <div className="kpis">
              <Kpi
                label="Lag p99"
                value={formatMs(s.process.eventLoop.delayP99Ms)}
                tone={s.process.eventLoop.delayP99Ms > 100 ? 'bad' : undefined}
                sub={`p50 ${formatMs(s.process.eventLoop.delayP50Ms)}, max ${formatMs(s.process.eventLoop.delayMaxMs)}`}
              />
              <Kpi
                label="Utilization"
                value={formatPercent(s.process.eventLoop.utilization)}
                sub="share of time busy"
              />
              <Kpi
                label="Heap used"
                value={formatBytes(s.process.memory.heapUsedBytes)}
                sub={`${formatPercent(s.process.memory.heapUsedRatio)} of the limit`}
              />
              <Kpi
                label="Queries p95"
                value={formatMs(s.queries.p95)}
                sub={`${formatCount(s.queries.count)} queries`}
              />
            </div>
          )}
        </Async>
      </Section>
    </div>
  )
}

function CacheTiers({ stats }: { stats: CacheStats }) {
  const tiers: [string, TierStats][] = [['L1 (memory)', stats.l1]]
  if (stats.l2) tiers.push(['L2 (Redis)', stats.l2])
  return (
    <DataTable
      label="Cache tiers table"
      caption={<>Hit rate per tier{stats.l2 ? '' : ' (no Redis: L1 only)'}</>}
      columns={TIER_COLUMNS}
      rows={tiers}
    >
      {([name, t]) => (
        <tr key={name}>
          <td>{name}</td>
          <td className="num">
            {t.hits + t.misses > 0 ? formatPercent(t.hitRate) : '—'}
            <meter
              className="hit-meter"
              aria-label={`${name} hit rate`}
              min={0}
              max={1}
              value={t.hits + t.misses > 0 ? (t.hitRate ?? 0) : 0}
            />
          </td>
          <td className="num">{formatCount(t.hits)}</td>
          <td className="num">{formatCount(t.misses)}</td>
          <td className="num">{formatCount(t.size ?? null)}</td>
          <td className="num">{t.latency ? formatMs(t.latency.p99) : '—'}</td>
        </tr>
      )}
    </DataTable>
  )
}

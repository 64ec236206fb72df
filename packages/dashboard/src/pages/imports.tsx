import { useState } from 'react'
import { toApiError, type ApiError } from '../api/errors.js'
import type { ImportJob } from '../api/types.js'
import { DataTable, type Column } from '../components/data-table.js'
import { Async, ErrorBox, OperatorPage } from '../components/states.js'
import { formatCount, formatMs, formatPercent, formatRate, shortId } from '../lib/format.js'
import { importProgress, isActive } from '../lib/import-progress.js'
import { formatInstant } from '../lib/time.js'
import { useApi } from '../lib/use-api.js'
import { useSession } from '../session.js'
import { useView } from '../view.js'
import { offeredActions, type ImportJobView } from './import-actions.js'

const COLUMNS: Column[] = [
  'Job',
  'Status',
  'Progress',
  { label: 'Read', num: true },
  { label: 'Loaded', num: true },
  { label: 'Rejected', num: true },
  { label: 'Throughput', num: true },
  'Created',
  'Actions',
]

export function ImportsPage() {
  return (
    <OperatorPage title="Imports">
      <ImportJobs />
    </OperatorPage>
  )
}

function ImportJobs() {
  const { client } = useSession()
  const { state } = useView()
  const [fast, setFast] = useState(false)
  const jobs = useApi(
    'imports',
    async (signal) => {
      const page = await client.imports({ limit: 50 }, signal)
      setFast(page.items.some(isActive))
      return page
    },
    // Live progress: every second while a job runs, every 10 s otherwise.
    { refreshMs: fast ? 1000 : 10_000 },
  )
  const [actionError, setActionError] = useState<ApiError | undefined>()

  const act = async (job: ImportJob, action: 'pause' | 'resume' | 'cancel') => {
    setActionError(undefined)
    try {
      await client.importAction(job.id, action)
    } catch (err) {
      setActionError(toApiError(err))
    }
    jobs.reload()
  }

  const download = async (job: ImportJob) => {
    setActionError(undefined)
    try {
      const blob = await client.blob(client.rejectsPath(job.id))
      const url = URL.createObjectURL(blob)
      const a = document.createElement('a')
      a.href = url
      a.download = `import-${job.id}-rejects.csv`
      a.click()
      setTimeout(() => URL.revokeObjectURL(url), 10_000)
    } catch (err) {
      setActionError(toApiError(err))
    }
  }

  return (
    <section aria-label="Import jobs" aria-busy={jobs.loading}>
      {actionError ? <ErrorBox error={actionError} /> : null}
      <Async state={jobs}>
        {(page) => (
          <DataTable
            label="Import jobs table"
            card
            caption={
              <>
                Import jobs <span className="muted">(newest first; times in {state.tz})</span>
              </>
            }
            columns={COLUMNS}
            rows={page.items}
            empty="No data: no import jobs yet (strata import, or POST /v1/imports)"
          >
            {(job) => {
              const p = importProgress(job)
              const label = `Progress of job ${shortId(job.id)}`
              return (
                <tr key={job.id} data-testid="import-row">
                  <td>
                    <span className="mono" title={job.id}>
                      {shortId(job.id)}
                    </span>
                    <div className="muted small">
                      {job.spec?.target?.table ?? '?'}
                      {job.spec?.source?.format ? ` ← ${job.spec.source.format}` : ''}
                    </div>
                  </td>
                  <td>
                    <span className={`pill status-${job.status}`}>{job.status}</span>
                    {job.requested ? (
                      <div className="muted small">{job.requested} requested</div>
                    ) : null}
                    {job.reason ? <div className="muted small clip">{job.reason}</div> : null}
                    {job.status === 'failed' && (job as ImportJobView).resumable === false ? (
                      <div className="muted small">not resumable: fix the spec, import again</div>
                    ) : null}
                  </td>
                  <td className="nowrap">
                    {p === null ? (
                      <progress aria-label={label} />
                    ) : (
                      <progress aria-label={label} value={p} max={1} />
                    )}{' '}
                    <span className="small">{p === null ? '' : formatPercent(p, 0)}</span>
                  </td>
                  <td className="num">{formatCount(job.counts.read)}</td>
                  <td className="num">{formatCount(job.counts.loaded)}</td>
                  <td className="num">
                    {formatCount(job.counts.rejected)}
                    {job.counts.rejected > 0 ? (
                      <div className="small">
                        <a
                          href={client.url(client.rejectsPath(job.id))}
                          onClick={(e) => {
                            e.preventDefault()
                            void download(job)
                          }}
                        >
                          Rejects
                        </a>
                      </div>
                    ) : null}
                  </td>
                  <td className="num nowrap">
                    {formatRate(job.throughputRps)}
                    <div className="muted small">{formatMs(job.elapsedMs)}</div>
                  </td>
                  <td className="nowrap">{formatInstant(job.createdAt, state.tz, false)}</td>
                  <td className="nowrap">
                    {offeredActions(job).map((a) => (
                      <button
                        key={a}
                        type="button"
                        className="small-button"
                        aria-label={`${a} job ${shortId(job.id)}`}
                        onClick={() => void act(job, a)}
                      >
                        {a}
                      </button>
                    ))}
                  </td>
                </tr>
              )
            }}
          </DataTable>
        )}
      </Async>
    </section>
  )
}

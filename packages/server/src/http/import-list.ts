import { decodeKeysetCursor, encodeKeysetCursor } from '@strata/core'
import type { JobListCursor, JobStatus, ListJobsOptions } from '@strata/importer'
import { invalid } from './params.js'

const JOB_STATUSES: readonly JobStatus[] = [
  'queued',
  'running',
  'paused',
  'failed',
  'cancelled',
  'completed',
]
const LIST_MAX = 200

type Query = Record<string, string | string[] | undefined>

function invalidParameter(parameter: string, message: string): never {
  return invalid(message, { parameter })
}

/** GET /v1/imports' query (`limit`, `cursor`, `status` as a comma list) → list options; 400 when bad. */
export function parseJobListQuery(query: Query): ListJobsOptions {
  // A repeated parameter arrives as an array: one comma list for status, else invalid.
  const one = (name: string): string | undefined => {
    const v = query[name]
    if (Array.isArray(v)) {
      if (name === 'status') return v.join(',')
      invalidParameter(name, `${name} must be given once`)
    }
    return v
  }
  const q = { limit: one('limit'), cursor: one('cursor'), status: one('status') }
  let limit = 50
  if (q.limit !== undefined && q.limit !== '') {
    limit = Number(q.limit)
    if (!Number.isInteger(limit) || limit < 1)
      invalidParameter('limit', 'limit must be a positive integer')
  }
  const status =
    q.status === undefined || q.status === ''
      ? undefined
      : q.status.split(',').map((s) => {
          if (!JOB_STATUSES.includes(s.trim() as JobStatus))
            invalidParameter('status', `status must be among ${JOB_STATUSES.join(', ')}`)
          return s.trim() as JobStatus
        })
  return {
    limit: Math.min(limit, LIST_MAX),
    after: q.cursor ? parseJobCursor(q.cursor) : null,
    ...(status ? { status } : {}),
  }
}

/** The `nextCursor` of a page. */
export function encodeJobCursor(c: JobListCursor): string {
  return encodeKeysetCursor({ ts: c.createdAt, id: c.id })
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function parseJobCursor(value: string): JobListCursor {
  const c = decodeKeysetCursor(value)
  // Job ids are uuids: any other id did not come from a page of this list.
  if (!c || !UUID.test(c.id))
    return invalidParameter('cursor', 'cursor must be a nextCursor from a previous page')
  return { createdAt: c.ts, id: c.id }
}

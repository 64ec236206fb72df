import { describe, expect, it } from 'vitest'
import type { ImportJob, RecentLogin } from '../src/api/types.js'
import { importProgress, isActive, jobActions } from '../src/lib/import-progress.js'
import {
  loginFilterParams,
  matchesLoginFilter,
  parseLoginFilter,
  writeLoginFilter,
} from '../src/lib/login-filter.js'

const login = (over: Partial<RecentLogin>): RecentLogin => ({
  messageId: 'm1',
  userId: 'user_1',
  email: null,
  method: 'email',
  success: true,
  failureReason: null,
  sessionId: null,
  ip: null,
  deviceType: 'desktop',
  browser: null,
  os: null,
  userAgent: null,
  timestamp: '2026-11-28T23:59:20.104Z',
  receivedAt: '2026-11-28T23:59:20.254Z',
  ...over,
})

describe('recent-logins filters', () => {
  it('round-trip through the URL next to the view state', () => {
    const search = '?from=2026-11-01&to=2026-11-29&tz=UTC'
    const f = { method: 'google', result: 'failure' as const, userId: 'user_9' }
    const written = writeLoginFilter(search, f)
    expect(written).toBe(
      '?from=2026-11-01&to=2026-11-29&tz=UTC&method=google&result=failure&user=user_9',
    )
    expect(parseLoginFilter(written)).toEqual(f)
    expect(writeLoginFilter(written, { method: '', result: 'all', userId: '' })).toBe(search)
    expect(parseLoginFilter('?result=maybe')).toEqual({ method: '', result: 'all', userId: '' })
  })

  it('map to the API parameters', () => {
    expect(loginFilterParams({ method: '', result: 'all', userId: '' })).toEqual({})
    expect(loginFilterParams({ method: 'okta_saml', result: 'success', userId: 'u' })).toEqual({
      method: 'okta_saml',
      success: true,
      userId: 'u',
    })
    expect(loginFilterParams({ method: '', result: 'failure', userId: '' })).toEqual({
      success: false,
    })
  })

  it('match logins client-side', () => {
    const all = { method: '', result: 'all' as const, userId: '' }
    expect(matchesLoginFilter(login({}), all)).toBe(true)
    expect(matchesLoginFilter(login({ success: false }), { ...all, result: 'failure' })).toBe(true)
    expect(matchesLoginFilter(login({ success: true }), { ...all, result: 'failure' })).toBe(false)
    expect(matchesLoginFilter(login({ method: 'google' }), { ...all, method: 'email' })).toBe(false)
    expect(matchesLoginFilter(login({ userId: 'user_2' }), { ...all, userId: 'user_2' })).toBe(true)
    expect(matchesLoginFilter(login({ userId: 'user_22' }), { ...all, userId: 'user_2' })).toBe(
      false,
    )
  })
})

const job = (over: Partial<ImportJob>): ImportJob => ({
  id: '00000000-0000-4000-8000-000000000001',
  status: 'running',
  requested: null,
  reason: null,
  spec: null,
  counts: { read: 0, loaded: 0, rejected: 0, skipped: 0 },
  totalBytes: null,
  bytesRead: null,
  throughputRps: null,
  errorRate: 0,
  elapsedMs: 0,
  createdAt: '2026-11-29T00:00:00Z',
  startedAt: null,
  updatedAt: '2026-11-29T00:00:00Z',
  finishedAt: null,
  ...over,
})

describe('import job progress', () => {
  it('is bytes read of the source size, 1 when completed, unknown otherwise', () => {
    expect(importProgress(job({ totalBytes: 1000, bytesRead: 250 }))).toBe(0.25)
    expect(importProgress(job({ totalBytes: 1000, bytesRead: 5000 }))).toBe(1)
    expect(importProgress(job({ status: 'completed' }))).toBe(1)
    expect(importProgress(job({ status: 'queued' }))).toBe(0)
    expect(importProgress(job({}))).toBeNull()
    expect(importProgress(job({ status: 'paused', totalBytes: 0, bytesRead: 0 }))).toBeNull()
  })

  it('offers the actions the service accepts in each status', () => {
    expect(jobActions(job({ status: 'running' }))).toEqual(['pause', 'cancel'])
    expect(jobActions(job({ status: 'running', requested: 'pause' }))).toEqual([])
    expect(jobActions(job({ status: 'paused' }))).toEqual(['resume', 'cancel'])
    expect(jobActions(job({ status: 'failed' }))).toEqual(['resume', 'cancel'])
    expect(jobActions(job({ status: 'completed' }))).toEqual([])
    expect(isActive(job({ status: 'queued' }))).toBe(true)
    expect(isActive(job({ status: 'cancelled' }))).toBe(false)
  })
})

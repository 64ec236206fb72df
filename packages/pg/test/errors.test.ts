import { describe, expect, it } from 'vitest'
import pg from 'pg'
import { isTransientDbError, pgErrors } from '@strata/pg'
import { toDbError } from '../src/errors.js'

function serverError(code: string, message = 'x'): pg.DatabaseError {
  const e = new pg.DatabaseError(message, message.length, 'error')
  e.code = code
  return e
}
const sock = (code: string) => Object.assign(new Error(`connect ${code}`), { code })

describe('isTransientDbError', () => {
  it.each([
    ['serialization failure', serverError('40001'), true],
    ['deadlock', serverError('40P01'), true],
    ['too many connections', serverError('53300'), true],
    [
      'admin shutdown',
      serverError('57P01', 'terminating connection due to administrator command'),
      true,
    ],
    ['lock timeout', serverError('55P03', 'canceling statement due to lock timeout'), true],
    ['connection refused', sock('ECONNREFUSED'), true],
    ['connection reset', sock('ECONNRESET'), true],
    ['terminated', new Error('Connection terminated unexpectedly'), true],
    ['pool acquire timeout', new Error('timeout exceeded when trying to connect'), true],
    ['client read timeout', new Error('Query read timeout'), true],
    [
      'statement timeout',
      serverError('57014', 'canceling statement due to statement timeout'),
      false,
    ],
    ['unique violation', serverError('23505'), false],
    ['syntax error', serverError('42601'), false],
    ['plain error', new Error('boom'), false],
    ['non-error', 'nope', false],
  ])('%s → %s (raw and wrapped)', (_name, err, transient) => {
    expect(isTransientDbError(err)).toBe(transient)
    expect(isTransientDbError(toDbError(err))).toBe(transient)
  })
})

describe('toDbError', () => {
  it('maps to stable codes and distinguishes timeout kinds', () => {
    const kind = (e: unknown) =>
      (toDbError(e) as unknown as { details: { kind?: string } }).details.kind
    expect(
      pgErrors.is(
        toDbError(serverError('57014', 'canceling statement due to statement timeout')),
        'STRATA_DB_TIMEOUT',
      ),
    ).toBe(true)
    expect(kind(serverError('57014', 'canceling statement due to statement timeout'))).toBe(
      'statement',
    )
    expect(kind(new Error('Query read timeout'))).toBe('query')
    expect(kind(new Error('timeout exceeded when trying to connect'))).toBe('acquire')
    expect(kind(new Error('Connection terminated due to connection timeout'))).toBe('connect')
    expect(kind(serverError('55P03', 'canceling statement due to lock timeout'))).toBe('lock')
    // A user cancel (57014 without "statement timeout") is a plain query failure.
    expect(
      pgErrors.is(
        toDbError(serverError('57014', 'canceling statement due to user request')),
        'STRATA_DB_QUERY_FAILED',
      ),
    ).toBe(true)
    expect(pgErrors.is(toDbError(serverError('57P01')), 'STRATA_DB_UNAVAILABLE')).toBe(true)
    expect(pgErrors.is(toDbError(sock('ECONNREFUSED')), 'STRATA_DB_UNAVAILABLE')).toBe(true)
  })

  it('keeps Postgres fields and the cause; passes StrataErrors through', () => {
    const raw = serverError('23503', 'insert or update violates foreign key constraint')
    raw.detail = 'Key (org_id)=(7) is not present in table "orgs".'
    raw.constraint = 'users_org_id_fkey'
    raw.table = 'users'
    raw.schema = 'public'
    raw.severity = 'ERROR'
    const e = toDbError(raw, { operation: 'INSERT', collection: 'users', label: 'signup' })
    expect(pgErrors.is(e, 'STRATA_DB_QUERY_FAILED')).toBe(true)
    expect(e.cause).toBe(raw)
    expect((e as unknown as { details: unknown }).details).toEqual({
      operation: 'INSERT',
      collection: 'users',
      label: 'signup',
      code: '23503',
      severity: 'ERROR',
      detail: raw.detail,
      constraint: 'users_org_id_fkey',
      table: 'users',
      schema: 'public',
    })
    expect(toDbError(e)).toBe(e)
  })

  it('every code follows STRATA_DB_* and carries a status', () => {
    for (const [code, def] of Object.entries(pgErrors.definitions)) {
      expect(code).toMatch(/^STRATA_DB_[A-Z_]+$/)
      expect(def.status).toBeGreaterThanOrEqual(400)
    }
  })
})

import { describe, expect, it } from 'vitest'
import { isStrataError } from '@strata/core'
import { lockErrors } from '@strata/lock'

describe('lockErrors registry', () => {
  it('uses STRATA_LOCK_* codes that equal their keys, each with a status and message', () => {
    const codes = Object.keys(lockErrors.definitions)
    expect(codes.length).toBeGreaterThanOrEqual(9)
    for (const code of codes) {
      expect(code).toMatch(/^STRATA_LOCK_[A-Z_]+$/)
      const err = lockErrors.create(code as keyof typeof lockErrors.definitions)
      expect(isStrataError(err)).toBe(true)
      expect(err.code).toBe(code)
      expect(err.status).toBeGreaterThanOrEqual(400)
      expect(err.message.length).toBeGreaterThan(10)
    }
  })

  it('keeps the codes callers rely on', () => {
    for (const code of [
      'STRATA_LOCK_NOT_ACQUIRED',
      'STRATA_LOCK_LOST',
      'STRATA_LOCK_NOT_HELD',
      'STRATA_LOCK_INVALID_TTL',
    ])
      expect(lockErrors.definitions).toHaveProperty(code)
  })
})

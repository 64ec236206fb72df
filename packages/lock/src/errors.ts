import { defineErrors } from '@strata/core'

/** Every error @strata/lock throws on purpose. Codes are stable; never reuse a retired one. */
export const lockErrors = defineErrors('lock', {
  STRATA_LOCK_NOT_ACQUIRED: {
    status: 409,
    message: 'The lock is held by another owner and was not acquired in time',
  },
  STRATA_LOCK_LOST: {
    status: 409,
    message: 'The lock expired or was taken over while it was held',
  },
  STRATA_LOCK_NOT_HELD: {
    status: 409,
    message: 'The lock is not held by this owner (released, expired or taken over)',
  },
  STRATA_LOCK_INVALID_TTL: {
    status: 400,
    message: 'Lock TTL must be a positive duration',
  },
  STRATA_LOCK_INVALID_KEY: {
    status: 400,
    message: 'Lock key must be a non-empty string',
  },
  STRATA_LOCK_INVALID_OPTIONS: {
    status: 400,
    message: 'Invalid lock options',
  },
  STRATA_LOCK_ABORTED: {
    status: 499,
    message: 'Waiting for the lock was aborted by the caller',
  },
  STRATA_LOCK_CLOSED: {
    status: 503,
    message: 'The lock provider is closed',
  },
  STRATA_LOCK_BACKEND: {
    status: 503,
    message: 'The lock backend (Redis or PostgreSQL) failed',
  },
})

export type LockErrorCode = keyof typeof lockErrors.definitions

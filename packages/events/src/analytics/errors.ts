import { defineErrors } from '@strata/core'

/** Every error the analytics queries throw on purpose (bad parameters are 400s, never 5xx). */
export const analyticsErrors = defineErrors('analytics', {
  STRATA_ANALYTICS_INVALID_RANGE: {
    status: 400,
    message: 'from/to must be ISO 8601 instants with a zone, from < to, within the maximum range',
  },
  STRATA_ANALYTICS_INVALID_TIMEZONE: {
    status: 400,
    message: 'tz must be an IANA time zone name (e.g. Europe/London) or UTC',
  },
  STRATA_ANALYTICS_INVALID_PARAMETER: { status: 400, message: 'Invalid analytics parameter' },
  STRATA_ANALYTICS_INVALID_CURSOR: { status: 400, message: 'Invalid or foreign pagination cursor' },
})

export type AnalyticsErrorCode = keyof typeof analyticsErrors.definitions

import type { z } from 'zod'
import { serverErrors } from '../errors.js'

/** Throws a 400 STRATA_VALIDATION_FAILED. */
export function invalid(message: string, details?: unknown): never {
  throw serverErrors.create('STRATA_VALIDATION_FAILED', {
    message,
    ...(details === undefined ? {} : { details }),
  })
}

/** Parses `value` (absent: `{}`) with a zod schema; a 400 naming `where` and each issue otherwise. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value ?? {})
  if (!r.success)
    invalid(
      `${where}: ${r.error.issues.map((i) => `${i.path.join('.') || 'value'} ${i.message}`).join('; ')}`,
      r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    )
  return r.data
}

import { findPgTextIssue, pgTextProblem } from '@strata/core'
import type { FastifyRequest } from 'fastify'
import type { z } from 'zod'
import { serverErrors } from '../errors.js'

/** Throws a 400 STRATA_VALIDATION_FAILED. */
export function invalid(message: string, details?: unknown): never {
  throw serverErrors.create('STRATA_VALIDATION_FAILED', {
    message,
    ...(details === undefined ? {} : { details }),
  })
}

/**
 * Parses `value` (absent: `{}`) with a zod schema; a 400 naming `where` and each issue otherwise.
 * Strings in the result must be text PostgreSQL stores (no NUL, no lone surrogate): parsed
 * values go to queries.
 */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value ?? {})
  if (!r.success)
    invalid(
      `${where}: ${r.error.issues.map((i) => `${i.path.join('.') || 'value'} ${i.message}`).join('; ')}`,
      r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    )
  const issue = findPgTextIssue(r.data)
  if (issue) {
    const path = issue.path.join('.') || 'value'
    invalid(`${where}: ${path} ${issue.problem}`, [{ path, message: issue.problem }])
  }
  return r.data
}

type Values = Record<string, unknown> | undefined

/**
 * Refuses (400 STRATA_VALIDATION_FAILED, naming the parameter) a request whose query-string
 * values or path parameters PostgreSQL would refuse as text (NUL, unpaired surrogates), before
 * any handler or query sees them. An `onRequest` hook for route plugins whose routes read
 * either: without it a `%00` reaches a query and comes back as a 500 with Postgres' message.
 */
export async function checkRequestText(request: FastifyRequest): Promise<void> {
  checkEncoding(request.url)
  checkValues(request.params as Values, 'path parameter')
  checkValues(request.query as Values, 'query parameter')
}

/**
 * The query parser keeps an escape it cannot decode as literal text (`%ED%A0%80`, an encoded
 * lone surrogate, arrives as those nine characters): bytes that are not UTF-8 are refused here
 * instead of being matched as something else.
 */
function checkEncoding(url: string): void {
  const q = url.indexOf('?')
  if (q === -1) return
  for (const part of url.slice(q + 1).split('&')) {
    if (!part.includes('%')) continue
    const eq = part.indexOf('=')
    const name = eq === -1 ? part : part.slice(0, eq)
    try {
      decodeURIComponent(part.replace(/\+/g, ' '))
    } catch {
      let shown = name
      try {
        shown = decodeURIComponent(name)
      } catch {
        // the name itself is the bad part: show it raw
      }
      invalid(`query parameter ${shown} is not percent-encoded UTF-8`, { parameter: shown })
    }
  }
}

function checkValues(values: Values, kind: string): void {
  if (!values || typeof values !== 'object') return
  for (const [name, value] of Object.entries(values)) {
    const nameProblem = pgTextProblem(name)
    if (nameProblem) invalid(`A ${kind} name ${nameProblem}`, { parameter: name })
    for (const v of Array.isArray(value) ? value : [value]) {
      if (typeof v !== 'string') continue
      const problem = pgTextProblem(v)
      if (problem) invalid(`${kind} ${name} ${problem}`, { parameter: name })
    }
  }
}

import type { ErrorRegistry } from '@strata/core'
import { cacheErrors } from '@strata/cache'
import { analyticsErrors, eventsErrors } from '@strata/events'
import { importErrors } from '@strata/importer'
import { lockErrors } from '@strata/lock'
import { pgErrors } from '@strata/pg'
import { serverErrors } from './errors.js'

/** Every package's error registry, for docs/reference/errors.md and its sync test. */
export const errorRegistries: ErrorRegistry<string>[] = [
  serverErrors,
  pgErrors,
  cacheErrors,
  lockErrors,
  eventsErrors,
  analyticsErrors,
  importErrors,
]

/** Renders docs/reference/errors.md from the registries (run `npm run docs:errors`). */
export function renderErrorsDoc(registries: ErrorRegistry<string>[] = errorRegistries): string {
  const out = [
    '# Error codes',
    '',
    'Every error Strata returns or throws on purpose carries a stable `STRATA_*` code. Over HTTP the',
    'body is `{"error":{"code":"STRATA_…","message":"…","details":…}}` with the status below; in',
    'the libraries the thrown `StrataError` has the same `code`, `status` and `details`.',
    'Codes are never reused for another meaning. This page is generated from the registries',
    '(`npm run docs:errors`) and a test fails when the two differ.',
    '',
  ]
  const seen = new Set<string>()
  for (const registry of registries) {
    out.push(`## ${registry.area}`, '', '| code | HTTP status | meaning |', '| --- | --- | --- |')
    for (const [code, def] of Object.entries(registry.definitions).sort(([a], [b]) =>
      a.localeCompare(b),
    )) {
      if (seen.has(code)) throw new Error(`error code ${code} is defined twice`)
      seen.add(code)
      out.push(`| \`${code}\` | ${def.status} | ${def.message} |`)
    }
    out.push('')
  }
  return out.join('\n')
}

import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { errorRegistries, renderErrorsDoc } from '../src/error-catalog.js'

describe('error code registry', () => {
  it('docs/reference/errors.md lists exactly the registered codes (run `npm run docs:errors`)', () => {
    const doc = readFileSync(new URL('../../../docs/reference/errors.md', import.meta.url), 'utf8')
    expect(doc).toBe(renderErrorsDoc())
  })

  it('every code is unique across packages, STRATA_-prefixed and has an HTTP status', () => {
    const codes = errorRegistries.flatMap((r) => Object.keys(r.definitions))
    expect(new Set(codes).size).toBe(codes.length)
    for (const r of errorRegistries) {
      for (const [code, def] of Object.entries(r.definitions)) {
        expect(code).toMatch(/^STRATA_[A-Z0-9_]+$/)
        expect(def.status).toBeGreaterThanOrEqual(400)
        expect(def.status).toBeLessThan(600)
        expect(def.message.length).toBeGreaterThan(0)
      }
    }
  })
})

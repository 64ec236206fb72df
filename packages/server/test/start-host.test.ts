import { describe, expect, it } from 'vitest'
import { withDefaultHost } from '../src/cli/commands/start.js'

describe('strata start: where it listens by default', () => {
  it('127.0.0.1 for the embedded quick start, as the README says', () => {
    expect(withDefaultHost({}).HOST).toBe('127.0.0.1')
  })

  it('HOST=0.0.0.0 listens publicly; with DATABASE_URL the configuration default stays', () => {
    expect(withDefaultHost({ HOST: '0.0.0.0' }).HOST).toBe('0.0.0.0')
    expect(withDefaultHost({ DATABASE_URL: 'postgres://db/strata' }).HOST).toBeUndefined()
  })
})

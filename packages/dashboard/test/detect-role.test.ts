// Signing in with a project key must not touch the operator-only project list: every such call
// is a 403 the browser logs in its console.
import { describe, expect, it } from 'vitest'
import { ApiClient, detectRole, type Fetch } from '../src/api/client.js'

const ADMIN_KEY = `sk_a_${'Ab3-_'.repeat(8)}xyz`
const WRITE_KEY = `sk_w_${'Zq9_-'.repeat(8)}abc`
const forbidden = [403, { error: { code: 'STRATA_AUTH_FORBIDDEN', message: 'no' } }] as const
const ok = [200, { items: [], nextCursor: null }] as const

/** The service as seen by a key: which paths answer what; records the paths asked. */
function service(routes: Record<string, readonly [number, unknown]>) {
  const paths: string[] = []
  const fetch: Fetch = async (url) => {
    const path = url.split('?')[0]!
    paths.push(path)
    const [status, body] = routes[path] ?? [404, { error: { code: 'STRATA_NOT_FOUND' } }]
    return new Response(JSON.stringify(body), { status })
  }
  return { fetch, paths }
}

describe('detectRole never asks for the project list with a project key', () => {
  it('keys have the shape the service gives them', () => {
    expect(ADMIN_KEY).toMatch(/^sk_a_[A-Za-z0-9_-]{43}$/)
    expect(WRITE_KEY).toMatch(/^sk_w_[A-Za-z0-9_-]{43}$/)
  })

  it("a project's admin key: analytics only, no /v1/projects", async () => {
    const s = service({ '/v1/projects': forbidden, '/v1/analytics/recent-logins': ok })
    expect(await detectRole(new ApiClient({ key: ADMIN_KEY, fetch: s.fetch }))).toBe('project')
    expect(s.paths).toEqual(['/v1/analytics/recent-logins'])
  })

  it("a project's write key: refused by the analytics call, no /v1/projects", async () => {
    const s = service({ '/v1/projects': forbidden, '/v1/analytics/recent-logins': forbidden })
    await expect(
      detectRole(new ApiClient({ key: WRITE_KEY, fetch: s.fetch })),
    ).rejects.toMatchObject({ status: 403, code: 'STRATA_AUTH_FORBIDDEN' })
    expect(s.paths).toEqual(['/v1/analytics/recent-logins'])
  })

  it('the operator token: the project list only', async () => {
    const s = service({ '/v1/projects': ok })
    expect(
      await detectRole(new ApiClient({ key: 'sta_operator-token-0123456789', fetch: s.fetch })),
    ).toBe('operator')
    expect(s.paths).toEqual(['/v1/projects'])
  })

  it('a key of another shape refused as operator is still tried as a project key', async () => {
    const s = service({ '/v1/projects': forbidden, '/v1/analytics/recent-logins': ok })
    expect(await detectRole(new ApiClient({ key: 'custom-key-0123456789', fetch: s.fetch }))).toBe(
      'project',
    )
    expect(s.paths).toEqual(['/v1/projects', '/v1/analytics/recent-logins'])
  })
})

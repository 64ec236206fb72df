import { describe, expect, it } from 'vitest'
import { ApiClient, detectRole, type Fetch } from '../src/api/client.js'
import { ApiError, errorFromResponse, networkError, toApiError } from '../src/api/errors.js'

interface Call {
  url: string
  init: RequestInit | undefined
}

/** A fetch that answers from a table of path → [status, body] and records the calls. */
function fakeFetch(routes: Record<string, [number, unknown]>): { fetch: Fetch; calls: Call[] } {
  const calls: Call[] = []
  const fetch: Fetch = async (url, init) => {
    calls.push({ url, init })
    const path = url.split('?')[0]!
    const [status, body] = routes[path] ?? [
      404,
      { error: { code: 'STRATA_NOT_FOUND', message: `No route GET ${path}` } },
    ]
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status })
  }
  return { fetch, calls }
}

const auth = (c: Call) => new Headers(c.init?.headers).get('authorization')

describe('API errors', () => {
  it("keep the service's code, message and details", () => {
    const e = errorFromResponse(
      400,
      JSON.stringify({
        error: {
          code: 'STRATA_ANALYTICS_INVALID_RANGE',
          message: 'from must be earlier than to',
          details: { parameter: 'from' },
        },
      }),
    )
    expect(e).toBeInstanceOf(ApiError)
    expect(e).toMatchObject({
      status: 400,
      code: 'STRATA_ANALYTICS_INVALID_RANGE',
      message: 'from must be earlier than to',
      details: { parameter: 'from' },
    })
  })

  it('say "Invalid key" for every 401', () => {
    const invalid = errorFromResponse(
      401,
      JSON.stringify({
        error: { code: 'STRATA_AUTH_INVALID', message: 'Invalid or revoked credentials' },
      }),
    )
    expect(invalid.message).toBe('Invalid or revoked credentials')
    expect(invalid.unauthorized).toBe(true)
    const missing = errorFromResponse(
      401,
      JSON.stringify({ error: { code: 'STRATA_AUTH_MISSING', message: 'Missing credentials' } }),
    )
    expect(missing.message).toBe('Invalid key: Missing credentials')
    expect(errorFromResponse(401, '').message).toBe('Invalid key')
  })

  it('fall back to the status when the body is not ours', () => {
    const e = errorFromResponse(502, '<html>Bad gateway</html>')
    expect(e).toMatchObject({ status: 502, code: 'HTTP_502', message: 'Bad gateway' })
    expect(errorFromResponse(418, '{}')).toMatchObject({ code: 'HTTP_418', message: 'HTTP 418' })
    expect(networkError(new TypeError('Failed to fetch'))).toMatchObject({
      status: 0,
      code: 'NETWORK_ERROR',
      message: 'Could not reach the Strata service (Failed to fetch)',
    })
    expect(toApiError(new Error('boom'))).toMatchObject({ code: 'CLIENT_ERROR', message: 'boom' })
    const same = new ApiError(403, 'STRATA_AUTH_FORBIDDEN', 'no')
    expect(toApiError(same)).toBe(same)
  })
})

describe('ApiClient', () => {
  it('sends the key as a Bearer header, never in the URL, and the query parameters', async () => {
    const { fetch, calls } = fakeFetch({
      '/v1/analytics/recent-logins': [200, { items: [], nextCursor: null }],
    })
    const client = new ApiClient({ key: 'sk_a_secret', fetch })
    await client.recentLogins({
      limit: 50,
      project: 'p1',
      method: 'google',
      success: false,
      userId: undefined,
    })
    expect(calls).toHaveLength(1)
    expect(calls[0]!.url).toBe(
      '/v1/analytics/recent-logins?limit=50&project=p1&method=google&success=false',
    )
    expect(calls[0]!.url).not.toContain('sk_a_secret')
    expect(auth(calls[0]!)).toBe('Bearer sk_a_secret')
  })

  it('turns error answers into ApiError and unreachable services into NETWORK_ERROR', async () => {
    const { fetch } = fakeFetch({
      '/v1/performance': [
        503,
        { error: { code: 'STRATA_NOT_READY', message: 'A dependency is not ready' } },
      ],
    })
    const client = new ApiClient({ key: 'k', fetch })
    await expect(client.performance()).rejects.toMatchObject({
      status: 503,
      code: 'STRATA_NOT_READY',
    })
    const down = new ApiClient({
      key: 'k',
      fetch: () => Promise.reject(new TypeError('Failed to fetch')),
    })
    await expect(down.health()).rejects.toMatchObject({ status: 0, code: 'NETWORK_ERROR' })
  })

  it('escapes path parameters', async () => {
    const { fetch, calls } = fakeFetch({})
    const client = new ApiClient({ key: 'k', fetch })
    await client.userActivity('a/b c', {}).catch(() => {})
    expect(calls[0]!.url).toBe('/v1/analytics/users/a%2Fb%20c/activity')
    expect(client.rejectsPath('../x')).toBe('/v1/imports/..%2Fx/rejects')
  })
})

describe('detectRole', () => {
  const forbidden = [403, { error: { code: 'STRATA_AUTH_FORBIDDEN', message: 'no' } }] as [
    number,
    unknown,
  ]
  const invalid = [
    401,
    { error: { code: 'STRATA_AUTH_INVALID', message: 'Invalid or revoked credentials' } },
  ] as [number, unknown]
  const ok = [200, { items: [], nextCursor: null }] as [number, unknown]

  it('the operator token lists projects', async () => {
    const { fetch } = fakeFetch({ '/v1/projects': ok })
    expect(await detectRole(new ApiClient({ key: 'k', fetch }))).toBe('operator')
  })

  it("a project's admin key reads analytics", async () => {
    const { fetch } = fakeFetch({ '/v1/projects': forbidden, '/v1/analytics/recent-logins': ok })
    expect(await detectRole(new ApiClient({ key: 'k', fetch }))).toBe('project')
  })

  it('a write key is refused with a reason, an unknown key as invalid', async () => {
    const write = fakeFetch({ '/v1/projects': forbidden, '/v1/analytics/recent-logins': forbidden })
    await expect(detectRole(new ApiClient({ key: 'k', fetch: write.fetch }))).rejects.toMatchObject(
      {
        status: 403,
        message: expect.stringContaining('cannot read analytics'),
      },
    )
    const unknown = fakeFetch({ '/v1/projects': invalid })
    await expect(
      detectRole(new ApiClient({ key: 'k', fetch: unknown.fetch })),
    ).rejects.toMatchObject({
      status: 401,
      code: 'STRATA_AUTH_INVALID',
    })
  })
})

import { eventsErrors, type KeyKind } from '@strata/events'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { Authenticator } from '../auth/authenticator.js'
import type { AuthFailureLimiter } from '../auth/failure-limiter.js'
import type { Principal } from '../auth/principal.js'
import { closeIfBodyUnread } from '../auth/unread-body.js'
import { serverErrors } from '../errors.js'

/** Who a route admits. A valid credential of another kind gets 403. */
export interface PrincipalRequirement {
  /** Project key kinds admitted. @defaultValue [] */
  kinds?: KeyKind[]
  /** Admit the operator token. @defaultValue false */
  operator?: boolean
  /**
   * Also accept Segment's body `writeKey` when there is no Authorization header; such bodies
   * are held to the ingestion parser's small unauthenticated limit. @defaultValue false
   */
  bodyWriteKey?: boolean
}

type AuthHook = ((request: FastifyRequest, reply: FastifyReply) => Promise<void>) & {
  [REQUIREMENT]?: PrincipalRequirement
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the hooks of `app.requirePrincipal(...)`. */
    principal?: Principal
  }
  interface FastifyInstance {
    /**
     * The authentication of a route, given as its `preValidation` hook: the plugin moves it to
     * `onRequest`, so header credentials are checked before the body is read (see authPlugin).
     */
    requirePrincipal(allowed: PrincipalRequirement): AuthHook
  }
}

const REQUIREMENT = Symbol('strata.principalRequirement')

const AUTH_FAILURES = new Set([
  'STRATA_AUTH_MISSING',
  'STRATA_AUTH_INVALID',
  'STRATA_AUTH_FORBIDDEN',
])

function admit(allowed: PrincipalRequirement, principal: Principal): Principal {
  const ok =
    principal.type === 'operator'
      ? allowed.operator === true
      : (allowed.kinds ?? []).includes(principal.kind)
  if (ok) return principal
  const article = (word: string): string => (/^[aeiou]/.test(word) ? 'an' : 'a')
  const sent =
    principal.type === 'operator'
      ? 'the operator token'
      : `${article(principal.kind)} ${principal.kind} key`
  const wanted = [
    ...(allowed.kinds ?? []).map((k) => `a project's ${k} key`),
    ...(allowed.operator ? ['the operator token'] : []),
  ]
  throw eventsErrors.create('STRATA_AUTH_FORBIDDEN', {
    message: `This route takes ${wanted.join(' or ') || 'no credential you can send'}; you sent ${sent}`,
  })
}

/**
 * Authentication for every route: `request.principal` and `app.requirePrincipal(...)`.
 *
 * A route names its requirement as a `preValidation` hook (`app.requirePrincipal(...)`); an
 * `onRoute` hook moves it to `onRequest`, so credentials in headers (Bearer, Segment's Basic
 * `<key>:`) are checked before the body is read, decompressed or parsed. Only a route that
 * allows Segment's body `writeKey` and a request without credential headers waits for the
 * body (the ingestion parser holds it to a small limit) and is checked at preValidation.
 *
 * Failed authentications (401, 403, and any 4xx of a request still waiting for its body's
 * writeKey: too large, not JSON) are counted per client address; an address over the limit
 * gets 429 + Retry-After before any key is looked up. A request refused before its body
 * was read is answered with `Connection: close`: keeping the connection would mean reading
 * (and discarding) a body the client may still be sending.
 */
async function authPlugin(
  app: FastifyInstance,
  opts: { authenticator: Authenticator; failures: AuthFailureLimiter },
): Promise<void> {
  const { authenticator: auth, failures } = opts
  app.decorateRequest('principal', undefined)
  // Requests without credential headers waiting for their body's writeKey.
  const awaitingBody = new WeakSet<FastifyRequest>()

  async function refuse(
    request: FastifyRequest,
    reply: FastifyReply,
    err: unknown,
    count = true,
  ): Promise<never> {
    closeIfBodyUnread(request, reply)
    if (count && eventsErrors.is(err) && AUTH_FAILURES.has(err.code)) {
      const wait = await failures.fail(request.ip)
      if (wait > 0) void reply.header('retry-after', String(wait))
    }
    throw err
  }

  async function checkAddress(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const wait = await failures.retryAfter(request.ip)
    if (wait === 0) return
    await refuse(
      request,
      reply,
      serverErrors.create('STRATA_RATE_LIMITED', {
        message: `Too many failed authentications from this address (${failures.max} per window); retry in ${wait} s`,
        details: { retryAfterSeconds: wait },
      }),
    )
  }

  /** onRequest: header credentials; without them, 401 unless the body may carry a writeKey. */
  const beforeBody = (allowed: PrincipalRequirement) =>
    async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void> {
      await checkAddress(request, reply)
      try {
        const principal = await auth.fromHeaders(request)
        if (principal) request.principal = admit(allowed, principal)
        else if (allowed.bodyWriteKey) awaitingBody.add(request)
        else await auth.verify(null)
      } catch (err) {
        await refuse(request, reply, err)
      }
    }

  /**
   * preValidation: Segment's body `writeKey`, when the headers carried no credential. `count`:
   * false where countBodyFailure (onResponse) counts the refusal.
   */
  const fromBody = (allowed: PrincipalRequirement, count: boolean) =>
    async function authenticateBody(request: FastifyRequest, reply: FastifyReply): Promise<void> {
      if (request.principal) return
      try {
        request.principal = admit(allowed, await auth.fromBodyWriteKey(request.body))
      } catch (err) {
        await refuse(request, reply, err, count)
      }
    }

  /** onResponse: a body-writeKey request refused before its key was verified is a failure. */
  async function countBodyFailure(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const status = reply.statusCode
    if (!awaitingBody.has(request) || request.principal || status === 429) return
    if (status >= 400 && status < 500) await failures.fail(request.ip)
  }

  app.decorate('requirePrincipal', (allowed: PrincipalRequirement) => {
    // Runs as given only if something bypasses the onRoute hook below (e.g. addHook).
    const before = beforeBody(allowed)
    const body = fromBody(allowed, true)
    const hook: AuthHook = async (request, reply) => {
      if (request.principal) return
      await before(request, reply)
      if (allowed.bodyWriteKey) await body(request, reply)
    }
    hook[REQUIREMENT] = allowed
    return hook
  })

  app.addHook('onRoute', (route: RouteOptions) => {
    const pre = route.preValidation
    const hooks = (Array.isArray(pre) ? pre : pre ? [pre] : []) as AuthHook[]
    const marked = hooks.filter((h) => h[REQUIREMENT])
    if (marked.length === 0) return
    if (marked.length > 1) throw new Error(`${route.url}: more than one requirePrincipal hook`)
    const allowed = marked[0]![REQUIREMENT]!
    const others = hooks.filter((h) => !h[REQUIREMENT])
    const list = <T>(h: T | T[] | undefined): T[] => (Array.isArray(h) ? h : h ? [h] : [])
    route.onRequest = [...list(route.onRequest), beforeBody(allowed)] as RouteOptions['onRequest']
    route.preValidation = (allowed.bodyWriteKey
      ? [fromBody(allowed, false), ...others]
      : others) as unknown as RouteOptions['preValidation']
    if (allowed.bodyWriteKey)
      route.onResponse = [
        ...list(route.onResponse),
        countBodyFailure,
      ] as unknown as RouteOptions['onResponse']
  })
}

export default fp(authPlugin, { name: 'strata-auth' })

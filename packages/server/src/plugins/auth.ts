import { eventsErrors, type KeyKind } from '@strata/events'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Authenticator } from '../auth/authenticator.js'
import type { Principal } from '../auth/principal.js'

/** Who a route admits. A valid credential of another kind gets 403. */
export interface PrincipalRequirement {
  /** Project key kinds admitted. @defaultValue [] */
  kinds?: KeyKind[]
  /** Admit the operator token. @defaultValue false */
  operator?: boolean
  /** Also accept Segment's body `writeKey` when there is no Authorization header. @defaultValue false */
  bodyWriteKey?: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the hook of `app.requirePrincipal(...)`. */
    principal?: Principal
  }
  interface FastifyInstance {
    /** A preValidation hook that authenticates the request and sets `request.principal`. */
    requirePrincipal(allowed: PrincipalRequirement): (request: FastifyRequest) => Promise<void>
  }
}

/**
 * Authentication for every route: `request.principal` and `app.requirePrincipal(...)`. The
 * hook runs at preValidation, once the body is parsed, for Segment's body `writeKey`.
 */
async function authPlugin(
  app: FastifyInstance,
  opts: { authenticator: Authenticator },
): Promise<void> {
  const auth = opts.authenticator
  app.decorateRequest('principal', undefined)
  app.decorate('requirePrincipal', (allowed: PrincipalRequirement) => {
    return async function authHook(request: FastifyRequest): Promise<void> {
      const principal =
        (await auth.fromHeaders(request)) ??
        (allowed.bodyWriteKey ? await auth.fromBodyWriteKey(request.body) : await auth.verify(null))
      const ok =
        principal.type === 'operator'
          ? allowed.operator === true
          : (allowed.kinds ?? []).includes(principal.kind)
      if (!ok) {
        const what =
          principal.type === 'operator' ? 'the operator token' : `a ${principal.kind} key`
        throw eventsErrors.create('STRATA_AUTH_FORBIDDEN', {
          message: `This route does not accept ${what}`,
        })
      }
      request.principal = principal
    }
  })
}

export default fp(authPlugin, { name: 'strata-auth' })

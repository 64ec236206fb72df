import { eventsErrors, safeEqual, type KeyKind, type ProjectStore } from '@strata/events'
import type { FastifyRequest } from 'fastify'

/** Who is calling: the operator (STRATA_ADMIN_TOKEN) or a project's key. */
export type Principal =
  { type: 'operator' } | { type: 'key'; kind: KeyKind; projectId: string; keyId: string }

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
  }
}

export interface AuthOptions {
  store: ProjectStore
  /** The operator token; absent, no request is the operator. */
  adminToken: string | undefined
}

/**
 * The presented credential: `Authorization: Bearer <token>`, Segment's Basic `<key>:` (the key
 * is the user name, the password empty), or, when allowed, the body's `writeKey`.
 */
export function presentedCredential(
  request: FastifyRequest,
  allowBodyWriteKey: boolean,
): string | null {
  const header = request.headers.authorization
  if (header) {
    const space = header.indexOf(' ')
    const scheme = space === -1 ? header : header.slice(0, space)
    const value = space === -1 ? '' : header.slice(space + 1).trim()
    if (/^bearer$/i.test(scheme)) return value || null
    if (/^basic$/i.test(scheme)) {
      const decoded = Buffer.from(value, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      return (colon === -1 ? decoded : decoded.slice(0, colon)) || null
    }
    return null
  }
  if (allowBodyWriteKey) {
    const body = request.body as { writeKey?: unknown } | undefined
    if (body && typeof body === 'object' && typeof body.writeKey === 'string')
      return body.writeKey || null
  }
  return null
}

/** Resolves the credential to a principal; 401 when missing, unknown or revoked. */
export async function authenticate(
  request: FastifyRequest,
  options: AuthOptions,
  allowBodyWriteKey = false,
): Promise<Principal> {
  const credential = presentedCredential(request, allowBodyWriteKey)
  if (!credential)
    throw eventsErrors.create('STRATA_AUTH_MISSING', {
      message: 'Missing credentials: send Authorization: Bearer <key>',
    })
  if (options.adminToken && safeEqual(credential, options.adminToken)) return { type: 'operator' }
  const key = await options.store.verifyKey(credential)
  if (!key) throw eventsErrors.create('STRATA_AUTH_INVALID')
  return { type: 'key', kind: key.kind, projectId: key.projectId, keyId: key.keyId }
}

/**
 * A preValidation hook (the body is parsed by then, for Segment's body writeKey) admitting the
 * given key kinds and/or the operator. A valid credential of another kind → 403.
 */
export function requirePrincipal(
  options: AuthOptions,
  allowed: { kinds?: KeyKind[]; operator?: boolean; bodyWriteKey?: boolean },
) {
  return async function authHook(request: FastifyRequest): Promise<void> {
    const principal = await authenticate(request, options, allowed.bodyWriteKey ?? false)
    const ok =
      principal.type === 'operator'
        ? allowed.operator === true
        : (allowed.kinds ?? []).includes(principal.kind)
    if (!ok) {
      const what = principal.type === 'operator' ? 'the operator token' : `a ${principal.kind} key`
      throw eventsErrors.create('STRATA_AUTH_FORBIDDEN', {
        message: `This route does not accept ${what}`,
      })
    }
    request.principal = principal
  }
}

/** The project of a key principal (routes behind requirePrincipal with kinds only). */
export function projectOf(request: FastifyRequest): string {
  const p = request.principal
  if (!p || p.type !== 'key') throw eventsErrors.create('STRATA_AUTH_FORBIDDEN')
  return p.projectId
}

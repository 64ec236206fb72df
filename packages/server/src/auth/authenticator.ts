import type { IncomingHttpHeaders } from 'node:http'
import { eventsErrors, safeEqual, type ProjectStore } from '@strata/events'
import type { Principal } from './principal.js'

export interface AuthenticatorOptions {
  /** Verifies project keys. */
  store: Pick<ProjectStore, 'verifyKey'>
  /** The operator token; absent, no request is the operator. */
  adminToken: string | undefined
}

/**
 * The credential of an Authorization header: `Bearer <token>`, or Segment's Basic `<key>:`
 * (the key is the user name, the password empty). undefined: no header; null: a header
 * that carries no usable credential.
 */
export function headerCredential(header: string | undefined): string | null | undefined {
  if (!header) return undefined
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

/** A Segment body's `writeKey`, or null. */
export function bodyWriteKey(body: unknown): string | null {
  const b = body as { writeKey?: unknown } | undefined
  if (b && typeof b === 'object' && typeof b.writeKey === 'string') return b.writeKey || null
  return null
}

/**
 * Turns credentials into principals: the operator token, or a project key checked against
 * the project store. Header credentials need no body, so they can be checked before it is
 * read; Segment's body `writeKey` is a separate path.
 */
export class Authenticator {
  readonly #store: Pick<ProjectStore, 'verifyKey'>
  readonly #adminToken: string | undefined

  constructor(options: AuthenticatorOptions) {
    this.#store = options.store
    this.#adminToken = options.adminToken
  }

  /**
   * The principal of the request's Authorization header; null when it has none. A header
   * without a usable, known credential → 401.
   */
  async fromHeaders(request: { headers: IncomingHttpHeaders }): Promise<Principal | null> {
    const credential = headerCredential(request.headers.authorization)
    return credential === undefined ? null : this.verify(credential)
  }

  /** The principal of a Segment body's `writeKey`; 401 when absent or unknown. */
  fromBodyWriteKey(body: unknown): Promise<Principal> {
    return this.verify(bodyWriteKey(body))
  }

  /** Resolves a credential to a principal; 401 when missing, unknown or revoked. */
  async verify(credential: string | null): Promise<Principal> {
    if (!credential)
      throw eventsErrors.create('STRATA_AUTH_MISSING', {
        message: 'Missing credentials: send Authorization: Bearer <key>',
      })
    if (this.#adminToken && safeEqual(credential, this.#adminToken)) return { type: 'operator' }
    const key = await this.#store.verifyKey(credential)
    if (!key) throw eventsErrors.create('STRATA_AUTH_INVALID')
    return { type: 'key', kind: key.kind, projectId: key.projectId, keyId: key.keyId }
  }
}

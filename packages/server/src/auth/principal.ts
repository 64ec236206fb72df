import { eventsErrors, type KeyKind } from '@strata/events'
import type { FastifyRequest } from 'fastify'

/** Who is calling: the operator (STRATA_ADMIN_TOKEN) or a project's key. */
export type Principal =
  { type: 'operator' } | { type: 'key'; kind: KeyKind; projectId: string; keyId: string }

/** The project of a key principal (routes that admit key kinds only). */
export function projectOf(request: FastifyRequest): string {
  const p = request.principal
  if (!p || p.type !== 'key') throw eventsErrors.create('STRATA_AUTH_FORBIDDEN')
  return p.projectId
}

import { eventsErrors } from '@strata/events'
import type { FastifyInstance } from 'fastify'
import { projectOf } from '../../auth/principal.js'

const createSchema = {
  type: 'object',
  required: ['userId'],
  additionalProperties: false,
  properties: {
    sessionId: { type: 'string', minLength: 1, maxLength: 200 },
    userId: { type: 'string', minLength: 1, maxLength: 255 },
    ip: { type: 'string', maxLength: 64 },
    userAgent: { type: 'string', maxLength: 2048 },
    expiresInSeconds: { type: 'integer', minimum: 1, maximum: 31_536_000 },
  },
} as const

/** Sessions: create, validate (cached), touch (write-behind), end. Write or admin key. */
export default async function sessionRoutes(app: FastifyInstance): Promise<void> {
  const s = app.services
  const auth = app.requirePrincipal({ kinds: ['write', 'admin'] })
  const notFound = (id: string) =>
    eventsErrors.create('STRATA_SESSION_NOT_FOUND', {
      message: `Session ${JSON.stringify(id)} does not exist, has expired or has ended`,
    })

  app.post<{
    Body: {
      sessionId?: string
      userId: string
      ip?: string
      userAgent?: string
      expiresInSeconds?: number
    }
  }>(
    '/v1/sessions',
    { preValidation: auth, schema: { body: createSchema } },
    async (request, reply) => {
      const b = request.body
      const session = await s.sessions.create({
        projectId: projectOf(request),
        userId: b.userId,
        ...(b.sessionId ? { sessionId: b.sessionId } : {}),
        ip: b.ip ?? request.ip,
        userAgent: b.userAgent ?? request.headers['user-agent'] ?? null,
        ...(b.expiresInSeconds ? { expiresIn: b.expiresInSeconds * 1000 } : {}),
      })
      return reply.code(201).send({ session })
    },
  )

  app.get<{ Params: { id: string } }>(
    '/v1/sessions/:id',
    { preValidation: auth },
    async (request) => {
      const session = await s.sessions.validate(projectOf(request), request.params.id)
      if (!session) throw notFound(request.params.id)
      return { session, valid: true }
    },
  )

  app.post<{ Params: { id: string } }>(
    '/v1/sessions/:id/touch',
    { preValidation: auth },
    async (request) => {
      const session = await s.sessions.touch(projectOf(request), request.params.id)
      if (!session) throw notFound(request.params.id)
      return { session }
    },
  )

  app.delete<{ Params: { id: string } }>(
    '/v1/sessions/:id',
    { preValidation: auth },
    async (request, reply) => {
      const ended = await s.sessions.end(projectOf(request), request.params.id)
      if (!ended) throw notFound(request.params.id)
      return reply.code(204).send()
    },
  )
}

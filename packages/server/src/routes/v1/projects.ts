import { assertPgText } from '@strata/core'
import { eventsErrors, type KeyKind } from '@strata/events'
import type { FastifyInstance } from 'fastify'
import { checkRequestText, invalid } from '../../http/params.js'

/** Projects and keys: operator token only (DESIGN.md). */
export default async function projectRoutes(app: FastifyInstance): Promise<void> {
  const s = app.services
  const auth = app.requirePrincipal({ operator: true })
  app.addHook('onRequest', checkRequestText)

  app.post<{ Body: { name: string } }>(
    '/v1/projects',
    {
      preValidation: auth,
      schema: {
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200 },
          },
        },
      },
    },
    async (request, reply) => {
      // NUL and lone surrogates: Postgres refuses the one, silently turns the other into U+FFFD.
      const name = assertPgText(request.body.name, 'name', (m, field) =>
        invalid(`body ${m}`, { parameter: field }),
      )
      return reply.code(201).send(await s.projects.createProject(name))
    },
  )

  app.get('/v1/projects', { preValidation: auth }, async () => ({
    items: await s.projects.listProjects(),
    nextCursor: null,
  }))

  app.get<{ Params: { id: string } }>(
    '/v1/projects/:id/keys',
    { preValidation: auth },
    async (request) => {
      if (!(await s.projects.getProject(request.params.id)))
        throw eventsErrors.create('STRATA_PROJECT_NOT_FOUND')
      return { items: await s.projects.listKeys(request.params.id), nextCursor: null }
    },
  )

  app.post<{ Params: { id: string }; Body: { kind: KeyKind } }>(
    '/v1/projects/:id/keys',
    {
      preValidation: auth,
      schema: {
        body: {
          type: 'object',
          required: ['kind'],
          additionalProperties: false,
          properties: { kind: { enum: ['write', 'admin'] } },
        },
      },
    },
    async (request, reply) => {
      const { key, secret } = await s.projects.createKey(request.params.id, request.body.kind)
      return reply.code(201).send({ key, secret })
    },
  )

  app.delete<{ Params: { id: string } }>(
    '/v1/keys/:id',
    { preValidation: auth },
    async (request) => ({
      key: await s.projects.revokeKey(request.params.id),
    }),
  )
}

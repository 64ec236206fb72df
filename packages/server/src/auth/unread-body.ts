import type { FastifyReply, FastifyRequest } from 'fastify'

/**
 * For an answer sent before the request's body was read (refused authentication, a rate
 * limit): asks for the connection to be closed after it. Keeping it would mean reading and
 * discarding a body the client may still be sending, however large; Fastify does the same
 * when its parser refuses a body.
 */
export function closeIfBodyUnread(request: FastifyRequest, reply: FastifyReply): void {
  const h = request.headers
  const announced =
    h['transfer-encoding'] !== undefined ||
    (h['content-length'] !== undefined && h['content-length'] !== '0')
  if (announced && request.body === undefined && request.raw.httpVersionMajor === 1)
    void reply.header('connection', 'close')
}

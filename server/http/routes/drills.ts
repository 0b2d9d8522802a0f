import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Drill, DrillIdParams, DrillList, DrillListQuery, DrillReply, DrillRequest } from '../../../schemas/drill.ts'
import { ErrorReply } from '../../../schemas/errors.ts'

const denied = { 401: ErrorReply, 403: ErrorReply }
const byId = { ...denied, 400: ErrorReply, 404: ErrorReply, 409: ErrorReply }

/** /api/drills: restore drills (docs/drills.md). Starting and cancelling is for operators, reading for viewers. */
const drillRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const drills = fastify.backupService.drills
  const viewer = fastify.requireRole('viewer')
  const operator = fastify.requireRole('operator')

  fastify.post('/', {
    schema: { tags: ['drills'], body: DrillRequest, response: { 202: DrillReply, ...byId, 429: ErrorReply, 503: ErrorReply } },
    onRequest: operator,
    config: { audit: 'drill.start' },
  }, async (request, reply) => {
    const drill = await drills.start(request.body, request.principal!.username)
    request.auditBackupId = drill.backupId
    return reply.code(202).send({ drill })
  })

  fastify.get('/', {
    schema: { tags: ['drills'], querystring: DrillListQuery, response: { 200: DrillList, ...denied, 400: ErrorReply } },
    onRequest: viewer,
  }, async (request) => ({ items: await drills.list(request.query) }))

  fastify.get('/:id', {
    schema: { tags: ['drills'], params: DrillIdParams, response: { 200: Drill, ...byId } },
    onRequest: viewer,
  }, async (request) => await drills.get(request.params.id))

  fastify.post('/:id/cancel', {
    schema: { tags: ['drills'], params: DrillIdParams, response: { 200: Drill, ...byId } },
    onRequest: operator,
    config: { audit: 'drill.cancel' },
  }, async (request) => {
    const drill = await drills.cancel(request.params.id)
    request.auditBackupId = drill.backupId
    return drill
  })
}

export default drillRoutes

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { PinRequest } from '../../../schemas/backup.ts'
import { DeletedReply, IdParams } from '../../../schemas/common.ts'
import { ErrorReply } from '../../../schemas/errors.ts'
import { RestoreIdParams } from '../../../schemas/restore.ts'
import { SetListQuery, SetListResult, SetReply, SetRestoreReply, SetRestoreRequest, SetRestoreState } from '../../../schemas/sets.ts'

const denied = { 401: ErrorReply, 403: ErrorReply }
const byId = { ...denied, 400: ErrorReply, 404: ErrorReply, 409: ErrorReply }

/**
 * /api/sets/*: backup sets (one run over a server's databases plus its globals). A set is started by
 * POST /api/backup/create with allDatabases, databases or globals; its members are ordinary backups
 * (their records carry `set.id`), readable and downloadable through /api/backup/* as before.
 */
const setRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const service = fastify.backupService
  const viewer = fastify.requireRole('viewer')
  const operator = fastify.requireRole('operator')
  const admin = fastify.requireRole('admin')

  fastify.get('/', {
    schema: { tags: ['sets'], querystring: SetListQuery, response: { 200: SetListResult, ...denied, 400: ErrorReply } },
    onRequest: viewer,
  }, async (request) => service.listSets(request.query))

  fastify.get('/:id', {
    schema: { tags: ['sets'], params: IdParams, response: { 200: SetReply, ...byId } },
    onRequest: viewer,
  }, async (request) => ({ set: service.getSet(request.params.id) }))

  fastify.post('/:id/cancel', {
    schema: { tags: ['sets'], params: IdParams, response: { 200: SetReply, ...byId } },
    onRequest: operator,
    config: { audit: 'backup.cancel' },
  }, async (request) => ({ set: await service.cancelSet(request.params.id) }))

  fastify.post('/:id/pin', {
    schema: { tags: ['sets'], params: IdParams, body: PinRequest, response: { 200: SetReply, ...byId } },
    onRequest: operator,
    config: { audit: 'backup.pin' },
  }, async (request) => ({ set: await service.pinSet(request.params.id, request.body.pinned) }))

  fastify.delete('/:id', {
    schema: { tags: ['sets'], params: IdParams, response: { 200: DeletedReply, ...byId } },
    onRequest: admin,
    config: { audit: 'backup.delete' },
  }, async (request) => {
    await service.deleteSet(request.params.id)
    return { deleted: request.params.id }
  })

  fastify.post('/:id/restore', {
    schema: { tags: ['sets'], params: IdParams, body: SetRestoreRequest, response: { 202: SetRestoreReply, ...byId } },
    onRequest: admin,
    config: { audit: 'backup.restore' },
  }, async (request, reply) => {
    const body = request.body ?? {}
    const restore = await service.restoreSet(request.params.id, body)
    request.auditFields = { ...request.auditFields, subject: `the whole set onto target ${restore.target}` }
    return reply.code(202).send({ restore })
  })

  fastify.get('/restores/:id', {
    schema: { tags: ['sets'], params: RestoreIdParams, response: { 200: SetRestoreState, ...byId } },
    onRequest: admin,
  }, async (request) => service.setRestoreState(request.params.id))

  fastify.post('/restores/:id/cancel', {
    schema: { tags: ['sets'], params: RestoreIdParams, response: { 200: SetRestoreState, ...byId } },
    onRequest: admin,
    config: { audit: 'restore.cancel' },
  }, async (request) => await service.cancelSetRestore(request.params.id))
}

export default setRoutes

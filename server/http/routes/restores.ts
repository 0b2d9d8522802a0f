import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorReply } from '../../../schemas/errors.ts'
import { RestoreIdParams, RestoreState } from '../../../schemas/restore.ts'

const byId = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply, 409: ErrorReply }

/** /api/restore/*: follow and stop the restores started by POST /api/backup/:id/restore. Admin only, like starting one. */
const restoreRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const service = fastify.backupService
  const admin = fastify.requireRole('admin')

  fastify.get('/:id', {
    schema: { tags: ['restores'], params: RestoreIdParams, response: { 200: RestoreState, ...byId } },
    onRequest: admin,
  }, async (request) => service.restoreState(request.params.id))

  fastify.post('/:id/cancel', {
    schema: { tags: ['restores'], params: RestoreIdParams, response: { 200: RestoreState, ...byId } },
    onRequest: admin,
    config: { audit: 'restore.cancel' },
  }, async (request) => {
    // audited against the backup being restored: the restore id alone names nothing a reader knows
    request.auditBackupId = service.restoreState(request.params.id).backupId
    return await service.cancelRestore(request.params.id)
  })
}

export default restoreRoutes

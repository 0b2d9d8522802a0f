import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  BackupReply, BackupWithProgress, CleanupRequest, CleanupResult, CreateBackupRequest, ListQuery, ListResult, PinRequest, RestoreRequest,
} from '../../../schemas/backup.ts'
import { DeletedReply, IdParams } from '../../../schemas/common.ts'
import { ErrorReply } from '../../../schemas/errors.ts'
import { RestoreReply } from '../../../schemas/restore.ts'
import { CreateReply } from '../../../schemas/sets.ts'
import { DeletionLog, restoreSubject } from '../../audit/audit-trail.ts'

const denied = { 401: ErrorReply, 403: ErrorReply }
const byId = { ...denied, 400: ErrorReply, 404: ErrorReply, 409: ErrorReply }

/** /api/backup/*: thin adapters over BackupService; the engine decides, these translate. */
const backupRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const service = fastify.backupService
  const viewer = fastify.requireRole('viewer')
  const operator = fastify.requireRole('operator')
  const admin = fastify.requireRole('admin')

  fastify.post('/create', {
    schema: { tags: ['backups'], body: CreateBackupRequest, response: { 202: CreateReply, ...denied, 400: ErrorReply, 429: ErrorReply, 503: ErrorReply } },
    onRequest: operator,
    config: { audit: 'backup.create', rateLimit: { max: fastify.rateLimits.create, timeWindow: 60_000 } },
  }, async (request, reply) => {
    const backup = await service.create(request.body, request.principal!.username)
    // a set is audited under its id; its first member comes back as `backup`, the whole as `set`
    request.auditBackupId = backup.set?.id ?? backup.id
    return reply.code(202).send(backup.set ? { backup, set: service.getSet(backup.set.id) } : { backup })
  })

  fastify.get('/list', {
    schema: { tags: ['backups'], querystring: ListQuery, response: { 200: ListResult, ...denied, 400: ErrorReply } },
    onRequest: viewer,
  }, async (request) => service.list(request.query))

  fastify.get('/status/:id', {
    schema: { tags: ['backups'], params: IdParams, response: { 200: BackupWithProgress, ...byId } },
    onRequest: viewer,
  }, async (request) => {
    const backup = service.get(request.params.id)
    const progress = service.progress(backup.id)
    return progress ? { backup, progress } : { backup }
  })

  fastify.post('/:id/cancel', {
    schema: { tags: ['backups'], params: IdParams, response: { 200: BackupReply, ...byId } },
    onRequest: operator,
    config: { audit: 'backup.cancel' },
  }, async (request) => ({ backup: await service.cancel(request.params.id) }))

  fastify.post('/:id/validate', {
    schema: { tags: ['backups'], params: IdParams, response: { 200: BackupReply, ...byId } },
    onRequest: operator,
    config: { audit: 'backup.validate' },
  }, async (request) => ({ backup: await service.validate(request.params.id) }))

  fastify.post('/:id/pin', {
    schema: { tags: ['backups'], params: IdParams, body: PinRequest, response: { 200: BackupReply, ...byId } },
    onRequest: operator,
    config: { audit: 'backup.pin' },
  }, async (request) => ({ backup: await service.pin(request.params.id, request.body.pinned) }))

  fastify.delete('/:id', {
    schema: { tags: ['backups'], params: IdParams, response: { 200: DeletedReply, ...byId } },
    onRequest: admin,
    config: { audit: 'backup.delete' },
  }, async (request) => {
    await service.delete(request.params.id)
    return { deleted: request.params.id }
  })

  fastify.post('/cleanup', {
    schema: { tags: ['backups'], body: CleanupRequest, response: { 200: CleanupResult, ...denied, 400: ErrorReply } },
    onRequest: admin,
    config: { audit: 'backup.cleanup' },
  }, async (request) => {
    const req = request.body ?? {}
    const deletions = new DeletionLog()
    try {
      return await service.cleanup(req, deletions)
    } finally {
      request.auditFields = { dryRun: req.dryRun === true, ...deletions.fields() }
    }
  })

  fastify.post('/:id/restore', {
    schema: { tags: ['backups'], params: IdParams, body: RestoreRequest, response: { 202: RestoreReply, ...byId } },
    onRequest: admin,
    config: { audit: 'backup.restore' },
  }, async (request, reply) => {
    const job = await service.restore(request.params.id, request.body)
    const { mode } = await job.planned
    request.auditFields = { ...request.auditFields, subject: restoreSubject(request.body.target ?? service.get(request.params.id).target, request.body.database, mode) }
    return reply.code(202).send({ restore: { id: job.id, backupId: request.params.id, database: request.body.database, mode } })
  })
}

/** The audit line of a restore says which database it writes and whether an existing one goes. */
export default backupRoutes

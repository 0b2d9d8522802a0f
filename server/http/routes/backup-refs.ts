import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { BackupReply } from '../../../schemas/backup.ts'
import { ErrorReply } from '../../../schemas/errors.ts'

const RefParams = Type.Object({
  ref: Type.String({ minLength: 1, maxLength: 200, description: 'an ID, a unique ID prefix (8+ characters), a backup name, `latest` or `latest:TARGET`' }),
}, { additionalProperties: false })

/**
 * GET /api/backup/resolve/:ref: the backup a short form means. The other routes take full IDs only, so a URL
 * names one backup for good (a script that deletes `latest` twice must not delete two backups); a client
 * resolves first, then calls them, as the CLI does with --server.
 */
const backupRefRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const service = fastify.backupService
  fastify.get('/resolve/:ref', {
    schema: {
      tags: ['backups'],
      summary: 'Find a backup by ID prefix, name or latest[:TARGET]',
      params: RefParams,
      response: { 200: BackupReply, 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply },
    },
    onRequest: fastify.requireRole('viewer'),
  }, async (request) => ({ backup: service.resolve(request.params.ref) }))
}

export default backupRefRoutes

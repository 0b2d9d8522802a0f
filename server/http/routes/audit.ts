import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AuditPage, AuditQuery } from '../../../schemas/audit.ts'
import { ErrorReply } from '../../../schemas/errors.ts'

const auditRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/', {
    schema: { tags: ['audit'], querystring: AuditQuery, response: { 200: AuditPage, 400: ErrorReply, 401: ErrorReply, 403: ErrorReply } },
    onRequest: fastify.requireRole('admin'),
  }, async (request) => await fastify.auditLog.page(request.query.page ?? 1, request.query.pageSize ?? 50))
}

export default auditRoutes

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { DeletedReply } from '../../../schemas/common.ts'
import { Schedule, ScheduleCreate, ScheduleList, ScheduleParams, SchedulePatch } from '../../../schemas/schedule.ts'
import { ErrorReply } from '../../../schemas/errors.ts'

const denied = { 401: ErrorReply, 403: ErrorReply }
const byName = { ...denied, 400: ErrorReply, 404: ErrorReply, 409: ErrorReply }

/** /api/schedules (admin): named backup schedules; config-file ones are listed but read-only. */
const scheduleRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { scheduler } = fastify
  const admin = fastify.requireRole('admin')

  // every schedule.* entry names its schedule, denied and failed calls too: from the URL (known before the auth
  // check), else from the body of a create (parsed, not yet validated: only a plausible name is taken)
  fastify.addHook('onRequest', async (request) => {
    const name = (request.params as { name?: unknown }).name
    if (typeof name === 'string') request.auditFields = { ...request.auditFields, subject: name }
  })
  fastify.addHook('preValidation', async (request) => {
    const name = (request.body as { name?: unknown } | undefined)?.name
    if (request.auditFields?.subject === undefined && typeof name === 'string' && name.length <= 100) {
      request.auditFields = { ...request.auditFields, subject: name }
    }
  })

  fastify.get('/api/schedules', {
    schema: { tags: ['schedules'], response: { 200: ScheduleList, ...denied } },
    onRequest: admin,
  }, async () => ({ items: scheduler.list() }))

  fastify.get('/api/schedules/:name', {
    schema: { tags: ['schedules'], params: ScheduleParams, response: { 200: Schedule, ...byName } },
    onRequest: admin,
  }, async (request) => scheduler.get(request.params.name))

  fastify.post('/api/schedules', {
    schema: { tags: ['schedules'], body: ScheduleCreate, response: { 201: Schedule, ...denied, 400: ErrorReply, 409: ErrorReply } },
    onRequest: admin,
    config: { audit: 'schedule.create' },
  }, async (request, reply) => reply.code(201).send(await scheduler.create(request.body, request.principal!.username)))

  fastify.patch('/api/schedules/:name', {
    schema: { tags: ['schedules'], params: ScheduleParams, body: SchedulePatch, response: { 200: Schedule, ...byName } },
    onRequest: admin,
    config: { audit: 'schedule.update' },
  }, async (request) => await scheduler.update(request.params.name, request.body))

  fastify.delete('/api/schedules/:name', {
    schema: { tags: ['schedules'], params: ScheduleParams, response: { 200: DeletedReply, ...byName } },
    onRequest: admin,
    config: { audit: 'schedule.delete' },
  }, async (request) => {
    await scheduler.remove(request.params.name)
    return { deleted: request.params.name }
  })
}

export default scheduleRoutes

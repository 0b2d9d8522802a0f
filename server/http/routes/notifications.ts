import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorReply } from '../../../schemas/errors.ts'
import { DeliveryResult, NotificationChannelList, NotificationChannelParams } from '../../../schemas/notifications.ts'

const denied = { 401: ErrorReply, 403: ErrorReply }

/** /api/notifications (admin): the configured channels (never a secret) and a test message per channel. */
const notificationRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { notifier } = fastify
  const admin = fastify.requireRole('admin')

  fastify.addHook('onRequest', async (request) => {
    const name = (request.params as { name?: unknown }).name
    if (typeof name === 'string') request.auditFields = { ...request.auditFields, subject: name }
  })

  fastify.get('/', {
    schema: { tags: ['notifications'], operationId: 'listNotificationChannels', summary: 'The notification channels (never a secret)', response: { 200: NotificationChannelList, ...denied } },
    onRequest: admin,
  }, async () => ({ items: notifier.list() }))

  // 200 whatever the outcome: the delivery result is the answer; 404 only for a channel that is not configured
  fastify.post('/:name/test', {
    schema: {
      tags: ['notifications'], operationId: 'testNotificationChannel', summary: 'Send a channel a test message; the delivery result',
      params: NotificationChannelParams, response: { 200: DeliveryResult, ...denied, 400: ErrorReply, 404: ErrorReply },
    },
    onRequest: admin,
    config: { audit: 'notification.test' },
  }, async (request) => await notifier.test(request.params.name))
}

export default notificationRoutes

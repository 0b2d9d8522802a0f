import type { FastifyPluginAsync } from 'fastify'

/** GET /api/backup/ws: live events fan-out (filled in by the live-hub work). */
const wsRoutes: FastifyPluginAsync = async () => {}

export default wsRoutes

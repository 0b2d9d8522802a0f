import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { HealthReply, ReadyReply } from '../../../schemas/health.ts'
import { checkReadiness } from '../readiness.ts'

/** Unauthenticated on purpose (load balancers, orchestrators); they reveal no secrets. */
const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/', {
    schema: { tags: ['health'], response: { 200: HealthReply } },
    config: { rateLimit: false },
  }, async () => ({ status: 'ok' as const, uptimeSeconds: Math.round(process.uptime()) }))

  fastify.get('/ready', {
    schema: { tags: ['health'], response: { 200: ReadyReply, 503: ReadyReply } },
  }, async (_request, reply) => {
    const r = await checkReadiness(fastify.config)
    const reasons = r.checks.filter(c => !c.ok).map(c => `${c.name}: ${c.message ?? 'failed'}`)
    return reply.code(r.ready ? 200 : 503).send({ ...r, reasons })
  })
}

export default healthRoutes

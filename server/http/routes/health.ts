import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { HealthReply, ReadyReply } from '../../../schemas/health.ts'
import { ErrorReply } from '../../../schemas/errors.ts'
import { isPgkeepError } from '../../errors.ts'
import { SESSION_COOKIE } from '../plugins/external/jwt.ts'
import { ReadinessCache } from '../readiness.ts'

/** How old a readiness result an anonymous caller may get. */
const PUBLIC_READY_MAX_AGE_MS = 5000

const hasCredentials = (request: FastifyRequest): boolean =>
  request.headers.authorization !== undefined || request.cookies?.[SESSION_COOKIE] !== undefined

/**
 * Whether the caller's credentials hold: true, or false when they cannot be checked now (with a shared catalog,
 * sessions and tokens live in it, and it is down). Bad credentials still throw (401).
 */
async function verifiable (fastify: FastifyInstance, request: FastifyRequest): Promise<boolean> {
  try {
    await fastify.verifyRequest(request)
    return true
  } catch (err) {
    if (isPgkeepError(err) && err.code === 'UNAUTHORIZED') throw err
    request.log.warn({ err }, 'readiness: the credentials could not be checked; answering as to an anonymous caller')
    return false
  }
}

/**
 * Unauthenticated on purpose (load balancers, orchestrators), so they say no more than up / ready. Why a
 * server is not ready (target names, hosts, errors) is for logged-in users: with credentials, any role, the
 * probe is fresh and every check is listed; bad credentials are a 401 rather than a quiet downgrade. With a
 * shared catalog, logged-in users also get `instance` (this instance's id, leases and the shared queue).
 */
const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const service = fastify.backupService
  const readiness = new ReadinessCache(fastify.config, PUBLIC_READY_MAX_AGE_MS, async () => await service.instanceStatus())

  fastify.get('/', {
    schema: { tags: ['health'], response: { 200: HealthReply } },
    config: { rateLimit: false },
  }, async () => ({ status: 'ok' as const, uptimeSeconds: Math.round(process.uptime()) }))

  fastify.get('/ready', {
    schema: { tags: ['health'], response: { 200: ReadyReply, 503: ReadyReply, 401: ErrorReply } },
  }, async (request, reply) => {
    if (!hasCredentials(request)) {
      const { ready } = await readiness.recent()
      return reply.code(ready ? 200 : 503).send({ ready })
    }
    // a readiness probe must answer even when the credentials cannot be checked: as to an anonymous caller, fresh
    if (!await verifiable(fastify, request)) {
      const { ready } = await readiness.probe()
      return reply.code(ready ? 200 : 503).send({ ready })
    }
    const r = await readiness.probe()
    const reasons = r.checks.filter(c => !c.ok).map(c => `${c.name}: ${c.message ?? 'failed'}`)
    return reply.code(r.ready ? 200 : 503).send({ ...r, reasons })
  })
}

export default healthRoutes

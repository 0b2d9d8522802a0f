import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorReply } from '../../../schemas/errors.ts'
import { TargetList, type TargetInfo } from '../../../schemas/targets.ts'
import { probeTargets } from '../../engine/health.ts'
import { findPgTool } from '../../engine/pg/tools.ts'

/**
 * GET /api/targets (viewer): the configured targets, each probed now (a connection per target, so only for
 * logged-in users), with the server's version and whether the installed pg_dump can dump it. No password.
 */
const targetRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/', {
    schema: { tags: ['targets'], response: { 200: TargetList, 401: ErrorReply, 403: ErrorReply } },
    onRequest: fastify.requireRole('viewer'),
  }, async () => {
    const { config } = fastify
    const pgDump = findPgTool('pg_dump', config.pgBinDir)
    const probed = await probeTargets(config, pgDump)
    const pgDumpVersion = await pgDump.then(t => t.version, () => undefined)
    const items = probed.map((h): TargetInfo => {
      const t = config.targets[h.name]
      return {
        name: t.name, host: t.host, port: t.port, database: t.database, user: t.user,
        reachable: h.server !== undefined,
        ...(h.server ? { serverVersion: h.server.version } : {}),
        ...(pgDumpVersion ? { pgDumpVersion } : {}),
        ok: h.ok,
        ...(h.ok ? {} : { problem: { code: h.error.code, message: h.error.message } }),
      }
    })
    return { items }
  })
}

export default targetRoutes

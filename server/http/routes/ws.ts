import websocket from '@fastify/websocket'
import fp from 'fastify-plugin'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { LiveHub } from '../live-hub.ts'
import { watchViewer } from '../viewer-watch.ts'

export interface WsRouteOptions {
  /** unsent bytes a viewer may owe before it is dropped */
  maxBufferedBytes?: number
}

/**
 * GET /api/backup/ws: live events for viewers and up. Auth runs in onRequest, before the upgrade, so a
 * caller without a valid cookie or bearer token gets a plain 401 and never a socket. Not encapsulated, so
 * @fastify/websocket (and its injectWS) lives on the root instance whose server sees the upgrades.
 */
const wsRoutes: FastifyPluginAsyncTypebox<WsRouteOptions> = async (fastify, opts) => {
  if (!fastify.hasDecorator('websocketServer')) {
    // viewers send nothing we read: a tiny payload cap keeps a hostile client from making us buffer
    await fastify.register(websocket, { options: { maxPayload: 4096 } })
  }
  const hub = new LiveHub(fastify.backupService, { maxBufferedBytes: opts.maxBufferedBytes })
  const viewer = fastify.requireRole('viewer')
  const { wsHeartbeatMs, wsRecheckMs } = fastify.config.http

  fastify.addHook('onClose', async () => { hub.close() })

  fastify.get('/api/backup/ws', {
    websocket: true,
    schema: { tags: ['backups'], summary: 'live backup events (WebSocket)', hide: true },
    // injectWS's in-memory socket has no address; the global limit still counts real clients by IP
    config: { rateLimit: { keyGenerator: (request: FastifyRequest) => request.ip ?? 'in-process' } },
    onRequest: viewer,
  }, (socket, request) => {
    const remove = hub.add(socket, request.principal!.role)
    watchViewer(socket, {
      heartbeatMs: wsHeartbeatMs,
      recheckMs: wsRecheckMs,
      recheck: async () => (await fastify.verifyRequest(request)).role,
      onRole: role => { hub.setRole(socket, role) },
      onRefused: (err) => {
        remove()
        request.log.info({ code: (err as { code?: string }).code }, 'viewer socket closed: its session or token is no longer valid')
      },
    })
    socket.on('close', remove)
    socket.on('error', (err) => { request.log.debug({ err: err.message }, 'viewer socket error') })
  })
}

export default fp(wsRoutes, { name: 'pgkeep-ws', dependencies: ['pgkeep-backup-service', 'pgkeep-auth'] })

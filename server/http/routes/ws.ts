import websocket from '@fastify/websocket'
import fp from 'fastify-plugin'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'
import { LiveHub, type LiveClient } from '../live-hub.ts'
import { CredentialRechecks, watchViewer } from '../viewer-watch.ts'

export interface WsRouteOptions {
  /** unsent bytes a viewer may owe before it is dropped */
  maxBufferedBytes?: number
}

/**
 * The hub's view of a viewer's socket: the WebSocket, and corking of the TCP socket beneath it, so that the
 * events of one turn of the loop leave in one write. `ws` keeps that socket in `_socket` (every version since
 * 1.x); without it the hub writes once per event, as it would anyway. The hub's frames (one per event for all
 * viewers) go straight to that socket when no extension was negotiated: ws frames every message of ours the same
 * way and writes it at once (its queue is for compression, which is off), so the order of frames is kept.
 */
function liveClient (socket: WebSocket): LiveClient {
  const raw = (socket as unknown as { _socket?: Duplex })._socket
  return {
    get bufferedAmount () { return socket.bufferedAmount },
    get readyState () { return socket.readyState },
    send: (data, options) => { socket.send(data, options) },
    terminate: () => { socket.terminate() },
    ...(raw !== undefined ? { cork: () => { raw.cork() }, uncork: () => { raw.uncork() } } : {}),
    ...(raw !== undefined && socket.extensions === '' ? { write: (frame: Buffer) => { raw.write(frame) } } : {}),
  }
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

  const rechecks = new CredentialRechecks(wsRecheckMs)

  fastify.addHook('onClose', async () => {
    rechecks.stop()
    hub.close()
  })

  fastify.get('/api/backup/ws', {
    websocket: true,
    schema: { tags: ['backups'], summary: 'live backup events (WebSocket)', hide: true },
    // injectWS's in-memory socket has no address; the global limit still counts real clients by IP
    config: { rateLimit: { keyGenerator: (request: FastifyRequest) => request.ip ?? 'in-process' } },
    onRequest: viewer,
  }, (socket, request) => {
    const client = liveClient(socket)
    const remove = hub.add(client, request.principal!.role)
    watchViewer(socket, {
      heartbeatMs: wsHeartbeatMs,
      rechecks,
      // what verifyRequest reads: the bearer token, else the session cookie
      credential: `${request.headers.authorization ?? ''}\n${request.headers.cookie ?? ''}`,
      recheck: async () => (await fastify.verifyRequest(request)).role,
      onRole: role => { hub.setRole(client, role) },
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

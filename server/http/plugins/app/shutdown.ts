import fp from 'fastify-plugin'

/**
 * On close, open requests (downloads) and WebSocket viewers get `drainMs` to finish; then every connection is
 * cut, so a client that stopped reading cannot hold the shutdown (fastify's close waits for every socket).
 */
export default fp<{ drainMs: number }>(async (fastify, opts) => {
  let cut: NodeJS.Timeout | undefined
  fastify.addHook('preClose', async () => {
    cut = setTimeout(() => {
      fastify.log.info('shutdown: cutting the connections still open')
      fastify.server.closeAllConnections()
      // upgraded sockets are no longer the HTTP server's to close; a polite close would wait for the peer
      for (const client of fastify.websocketServer?.clients ?? []) client.terminate()
    }, opts.drainMs)
    cut.unref()
  })
  fastify.addHook('onClose', async () => { clearTimeout(cut) })
}, { name: 'pgkeep-shutdown' })

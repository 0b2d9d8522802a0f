import fp from 'fastify-plugin'
import fastifyStatic from '@fastify/static'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { errorReply } from '../../error-codes.ts'

/**
 * Serves the built dashboard (dist/client) at / when it exists. Unknown GET paths outside /api fall back to
 * index.html so client-side routes like /dashboard/backup survive a reload; everything else is a coded 404.
 */
export default fp<{ root: string }>(async (fastify, opts) => {
  const hasClient = existsSync(join(opts.root, 'index.html'))
  if (hasClient) await fastify.register(fastifyStatic, { root: opts.root, wildcard: false, index: ['index.html'] })
  fastify.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]
    const isApi = path === '/api' || path.startsWith('/api/') || path === '/metrics' || path.startsWith('/docs')
    if (hasClient && (request.method === 'GET' || request.method === 'HEAD') && !isApi) {
      return reply.type('text/html; charset=utf-8').sendFile('index.html')
    }
    return reply.code(404).send(errorReply(404, 'NOT_FOUND', `route ${request.method} ${path} not found`))
  })
}, { name: 'pgkeep-static' })

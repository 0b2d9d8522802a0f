import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { PgkeepError } from '../../../errors.ts'
import { hostNameOf, originAllowed, originPolicy } from '../../origin-policy.ts'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
/** what probes and orchestrators call by IP or service name; they say only up / ready */
const HOST_EXEMPT = new Set(['/api/health', '/api/health/', '/api/health/ready'])
const WS_PATH = '/api/backup/ws'

/** Credentials the browser does not attach by itself: a bearer header (the WebSocket's too; never a URL token). */
function carriesOwnCredentials (request: FastifyRequest): boolean {
  return request.headers.authorization !== undefined
}

/**
 * Cross-site request forgery and DNS rebinding, checked before anything else runs (docs/http-api.md):
 * - Host must be one this server answers to (a rebinding page arrives under its own name);
 * - a request that would ride on the session cookie (no bearer header) and changes something, or opens the
 *   WebSocket, must come from our own origin or a configured one when the browser says where it comes from.
 *   Browsers always send Origin on such requests; a client that sends none is not a browser, and has to
 *   present the cookie itself.
 */
export default fp(async (fastify) => {
  const policy = originPolicy(fastify.config.host, fastify.config.http)
  if (!policy.hosts) {
    fastify.log.warn('listening beyond loopback with no PGKEEP_ALLOWED_HOSTS: any Host header is accepted; list the names this server is reached by to guard against DNS rebinding')
  }

  fastify.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0]
    const host = request.headers.host
    if (policy.hosts && host !== undefined && !HOST_EXEMPT.has(path)) {
      const name = hostNameOf(host)
      if (name === undefined || !policy.hosts.has(name)) {
        throw new PgkeepError('FORBIDDEN', `this server does not answer to host "${host}"; add it to PGKEEP_ALLOWED_HOSTS if it is one of its names`)
      }
    }
    const guarded = !SAFE_METHODS.has(request.method) || path === WS_PATH
    if (!guarded || carriesOwnCredentials(request)) return
    const origin = request.headers.origin ?? refererOrigin(request.headers.referer)
    if (origin === undefined) return
    // a request without a socket (injectWS) has no protocol; anything real does
    if (!originAllowed(policy, origin, request.protocol ?? 'http', request.host)) {
      throw new PgkeepError('FORBIDDEN', `cross-origin request refused: ${origin} may not act on this server; add it to PGKEEP_ALLOWED_ORIGINS if it should`)
    }
  })
}, { name: 'pgkeep-origin-guard' })

function refererOrigin (referer: string | undefined): string | undefined {
  if (!referer) return undefined
  try { return new URL(referer).origin } catch { return 'null' }
}

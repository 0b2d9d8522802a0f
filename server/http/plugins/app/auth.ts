import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ROLES, type Role } from '../../../../schemas/auth.ts'
import { PgkeepError } from '../../../errors.ts'
import type { ApiTokens, Principal, TokenClaims } from '../../../auth/token-store.ts'
import type { UserAccounts } from '../../../auth/users-store.ts'
import type { LoginAttemptCounter } from '../../../auth/login-attempts-pg.ts'
import type { CatalogDb } from '../../../catalog/catalog-db.ts'
import { authStores } from '../../../catalog/catalog-stores.ts'
import { SESSION_COOKIE } from '../external/jwt.ts'

type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

declare module 'fastify' {
  interface FastifyInstance {
    users: UserAccounts
    tokens: ApiTokens
    /** login attempts counted in the shared catalog; undefined = in this process (plugins/external/rate-limit.ts) */
    loginAttempts: LoginAttemptCounter | undefined
    /**
     * THE check of a request's credentials (`Authorization: Bearer` or the session cookie), done afresh on every
     * call: everything that authenticates goes through it, and re-running it on an open WebSocket's upgrade
     * request tells whether that socket's session or token is still valid now (logout, revocation, password or
     * role change, user removed). 401 PgkeepError otherwise.
     */
    verifyRequest (request: FastifyRequest): Promise<Principal>
    /** onRequest/preHandler: verifyRequest once per request, sets request.principal. */
    authenticate: Hook
    /** onRequest/preHandler: authenticates if needed, then 403 unless the role is at least `role`. */
    requireRole (role: Role): Hook
  }
  interface FastifyRequest {
    principal?: Principal
  }
}

const rank = (role: Role): number => ROLES.indexOf(role)

/** Signature, expiry, then the stores: revocation, logout, user still present with the session's stamp. */
async function verifyToken (fastify: FastifyInstance, token: string): Promise<Principal> {
  let claims: TokenClaims
  try {
    claims = fastify.jwt.verify<TokenClaims>(token)
  } catch {
    throw new PgkeepError('UNAUTHORIZED', 'invalid or expired token; log in again')
  }
  const principal = await fastify.tokens.principalFor(claims, fastify.users)
  if (!principal) throw new PgkeepError('UNAUTHORIZED', 'token revoked or user removed; log in again')
  return principal
}

function tokenFromRequest (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header) {
    const m = /^Bearer\s+(\S+)$/i.exec(header)
    if (!m) throw new PgkeepError('UNAUTHORIZED', 'Authorization header must be "Bearer <token>"')
    return m[1]
  }
  return request.cookies?.[SESSION_COOKIE] || undefined
}

export default fp<{ backupDir: string, catalog?: CatalogDb }>(async (fastify, opts) => {
  const stores = await authStores(opts.backupDir, opts.catalog)
  fastify.decorate('users', stores.users)
  fastify.decorate('tokens', stores.tokens)
  fastify.decorate('loginAttempts', stores.loginAttempts)
  fastify.decorateRequest('principal', undefined)
  const verifyRequest = async (request: FastifyRequest): Promise<Principal> => {
    const token = tokenFromRequest(request)
    if (!token) throw new PgkeepError('UNAUTHORIZED', 'authentication required: log in or send "Authorization: Bearer <token>"')
    return await verifyToken(fastify, token)
  }
  fastify.decorate('verifyRequest', verifyRequest)

  const authenticate: Hook = async (request) => {
    request.principal ??= await verifyRequest(request)
  }
  fastify.decorate('authenticate', authenticate)
  fastify.decorate('requireRole', (role: Role): Hook => async (request, reply) => {
    await authenticate(request, reply)
    const have = request.principal!.role
    if (rank(have) < rank(role)) throw new PgkeepError('FORBIDDEN', `this needs the ${role} role; you are ${have}`)
  })
}, { name: 'pgkeep-auth', dependencies: ['pgkeep-jwt'] })

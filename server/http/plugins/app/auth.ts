import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ROLES, type Role } from '../../../../schemas/auth.ts'
import { PgkeepError } from '../../../errors.ts'
import { TokenStore, type Principal, type TokenClaims } from '../../../auth/token-store.ts'
import { UsersStore } from '../../../auth/users-store.ts'
import { SESSION_COOKIE } from '../external/jwt.ts'

type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>

declare module 'fastify' {
  interface FastifyInstance {
    users: UsersStore
    tokens: TokenStore
    /** Verifies a JWT (signature, expiry, revocation, user still present) -> who and which role. 401 otherwise. */
    verifyToken (token: string): Promise<Principal>
    /**
     * The request's credentials (`Authorization: Bearer` or the session cookie) checked afresh on every call;
     * re-run on an open WebSocket's upgrade request, it tells whether that socket may still listen. 401 otherwise.
     */
    verifyRequest (request: FastifyRequest): Promise<Principal>
    /** onRequest/preHandler: accepts the session cookie or `Authorization: Bearer`, sets request.principal. */
    authenticate: Hook
    /** onRequest/preHandler: authenticates if needed, then 403 unless the role is at least `role`. */
    requireRole (role: Role): Hook
  }
  interface FastifyRequest {
    principal?: Principal
  }
}

const rank = (role: Role): number => ROLES.indexOf(role)

/** The WebSocket's `?token=` check uses this too. */
export async function verifyToken (fastify: FastifyInstance, token: string): Promise<Principal> {
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

export function tokenFromRequest (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header) {
    const m = /^Bearer\s+(\S+)$/i.exec(header)
    if (!m) throw new PgkeepError('UNAUTHORIZED', 'Authorization header must be "Bearer <token>"')
    return m[1]
  }
  return request.cookies?.[SESSION_COOKIE] || undefined
}

export default fp<{ backupDir: string }>(async (fastify, opts) => {
  fastify.decorate('users', new UsersStore(opts.backupDir))
  fastify.decorate('tokens', new TokenStore(opts.backupDir))
  fastify.decorateRequest('principal', undefined)
  fastify.decorate('verifyToken', (token: string) => verifyToken(fastify, token))

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

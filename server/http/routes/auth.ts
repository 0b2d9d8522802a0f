import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { LoginReply, LoginRequest, LogoutReply, User } from '../../../schemas/auth.ts'
import { ErrorReply } from '../../../schemas/errors.ts'
import { SESSION_TTL_SECONDS, type TokenClaims } from '../../auth/token-store.ts'
import { PgkeepError } from '../../errors.ts'
import { SESSION_COOKIE } from '../plugins/external/jwt.ts'
import { loginAttemptLimit } from '../plugins/external/rate-limit.ts'

const errors = { 400: ErrorReply, 401: ErrorReply, 429: ErrorReply }

const authRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const limitLoginAttempts = loginAttemptLimit(fastify, fastify.rateLimits, fastify.loginAttempts)

  fastify.post('/login', {
    schema: { tags: ['auth'], body: LoginRequest, response: { 200: LoginReply, ...errors } },
    config: { audit: 'login' },
    preHandler: async (request, reply) => {
      // named before the limit can refuse, so a refused attempt is audited under the account it aimed at
      request.auditUser = request.body.username
      await limitLoginAttempts(request, reply)
    },
  }, async (request, reply) => {
    const { username, password } = request.body
    const user = await fastify.users.verifyPassword(username, password)
    if (!user) throw new PgkeepError('UNAUTHORIZED', 'wrong username or password')
    const claims: TokenClaims = { sub: user.username, jti: randomUUID(), kind: 'session', gen: user.sessionStamp }
    const token = fastify.jwt.sign(claims, { expiresIn: SESSION_TTL_SECONDS })
    request.principal = { username: user.username, role: user.role, kind: 'session', jti: '' }
    void reply.setCookie(SESSION_COOKIE, token, {
      httpOnly: true,
      sameSite: 'strict',
      secure: request.protocol === 'https',
      path: '/',
      maxAge: SESSION_TTL_SECONDS,
    })
    return { token, user: { username: user.username, role: user.role } }
  })

  fastify.post('/logout', {
    schema: { tags: ['auth'], response: { 200: LogoutReply, 401: ErrorReply } },
    onRequest: fastify.authenticate,
    config: { audit: 'logout' },
  }, async (request, reply) => {
    const p = request.principal!
    // only the session ends; an API token sent as Bearer is revoked with `pgkeep token revoke`
    if (p.kind === 'session') await fastify.tokens.revokeSession(p.jti, p.exp ?? Math.floor(Date.now() / 1000) + SESSION_TTL_SECONDS)
    void reply.clearCookie(SESSION_COOKIE, { path: '/' })
    return { ok: true }
  })

  fastify.get('/me', {
    schema: { tags: ['auth'], response: { 200: User, 401: ErrorReply } },
    onRequest: fastify.authenticate,
  }, async (request) => ({ username: request.principal!.username, role: request.principal!.role }))
}

export default authRoutes

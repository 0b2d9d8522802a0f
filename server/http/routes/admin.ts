import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  PasswordReset, RoleChange, TokenCreate, TokenCreated, TokenInfo, TokenList, TokenParams, User, UserCreate, UserList, UsernameParams,
} from '../../../schemas/auth.ts'
import { DeletedReply } from '../../../schemas/common.ts'
import { ErrorReply } from '../../../schemas/errors.ts'
import { parseDuration } from '../../auth/token-store.ts'

const denied = { 401: ErrorReply, 403: ErrorReply }
const byName = { ...denied, 400: ErrorReply, 404: ErrorReply, 409: ErrorReply }

/**
 * /api/users and /api/tokens (admin): the dashboard's admin screens, the same stores `pgkeep user` and
 * `pgkeep token` write. Every change is audited with the user or token name as its subject; a password never is.
 */
const adminRoutes: FastifyPluginAsyncTypebox<{ secret: string }> = async (fastify, opts) => {
  const { users, tokens } = fastify
  const admin = fastify.requireRole('admin')

  // the subject of every user.* / token.* line, refused calls too: from the URL (known before the auth check),
  // else from the body of an add (parsed, not yet validated: only a plausible name is taken)
  fastify.addHook('onRequest', async (request) => {
    const username = (request.params as { username?: unknown }).username
    if (typeof username === 'string') request.auditFields = { ...request.auditFields, subject: username }
  })
  fastify.addHook('preValidation', async (request) => {
    const body = request.body as { username?: unknown, name?: unknown } | undefined
    const subject = body?.username ?? body?.name
    if (request.auditFields?.subject === undefined && typeof subject === 'string' && subject.length <= 100) {
      request.auditFields = { ...request.auditFields, subject }
    }
  })

  fastify.get('/users', {
    schema: { tags: ['admin'], response: { 200: UserList, ...denied } },
    onRequest: admin,
  }, async () => ({ items: await users.list() }))

  fastify.post('/users', {
    schema: { tags: ['admin'], body: UserCreate, response: { 201: User, ...denied, 400: ErrorReply, 409: ErrorReply } },
    onRequest: admin,
    config: { audit: 'user.add' },
  }, async (request, reply) => {
    const { username, role, password } = request.body
    return reply.code(201).send(await users.add(username, role, password))
  })

  fastify.put('/users/:username/role', {
    schema: { tags: ['admin'], params: UsernameParams, body: RoleChange, response: { 200: User, ...byName } },
    onRequest: admin,
    config: { audit: 'user.role' },
  }, async (request) => {
    await users.setRole(request.params.username, request.body.role, { keepAnAdmin: true })
    return { username: request.params.username, role: request.body.role }
  })

  fastify.put('/users/:username/password', {
    schema: { tags: ['admin'], params: UsernameParams, body: PasswordReset, response: { 200: User, ...byName } },
    onRequest: admin,
    config: { audit: 'user.passwd' },
  }, async (request) => {
    await users.setPassword(request.params.username, request.body.password)
    return (await users.get(request.params.username))!
  })

  fastify.delete('/users/:username', {
    schema: { tags: ['admin'], params: UsernameParams, response: { 200: DeletedReply, ...byName } },
    onRequest: admin,
    config: { audit: 'user.remove' },
  }, async (request) => {
    await users.remove(request.params.username, { keepAnAdmin: true })
    return { deleted: request.params.username }
  })

  fastify.get('/tokens', {
    schema: { tags: ['admin'], response: { 200: TokenList, ...denied } },
    onRequest: admin,
  }, async () => ({ items: await tokens.list() }))

  fastify.post('/tokens', {
    schema: { tags: ['admin'], body: TokenCreate, response: { 201: TokenCreated, ...denied, 400: ErrorReply, 409: ErrorReply } },
    onRequest: admin,
    config: { audit: 'token.create' },
  }, async (request, reply) => {
    const { name, role, expires } = request.body
    const created = await tokens.create(opts.secret, {
      name, role, createdBy: request.principal!.username, ...(expires ? { expiresInSeconds: parseDuration(expires) } : {}),
    })
    return reply.code(201).send(created)
  })

  fastify.delete('/tokens/:id', {
    schema: { tags: ['admin'], params: TokenParams, response: { 200: TokenInfo, ...byName } },
    onRequest: admin,
    config: { audit: 'token.revoke' },
  }, async (request) => {
    const info = await tokens.revoke(request.params.id)
    request.auditFields = { ...request.auditFields, subject: info.name }
    return info
  })
}

export default adminRoutes

import fp from 'fastify-plugin'
import jwt from '@fastify/jwt'

export const SESSION_COOKIE = 'pgkeep_session'

/** HS256 only: the same key and algorithm the CLI signs API tokens with (server/auth/token-store.ts). */
export default fp<{ secret: string }>(async (fastify, opts) => {
  await fastify.register(jwt, {
    secret: opts.secret,
    sign: { algorithm: 'HS256' },
    verify: { algorithms: ['HS256'] },
    cookie: { cookieName: SESSION_COOKIE, signed: false },
  })
}, { name: 'pgkeep-jwt', dependencies: ['pgkeep-cookie'] })

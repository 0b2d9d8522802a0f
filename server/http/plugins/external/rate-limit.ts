import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { PgkeepError } from '../../../errors.ts'
import type { LoginAttemptCounter } from '../../../auth/login-attempts-pg.ts'

export interface RateLimits {
  /** requests per minute per client IP, every route */
  global: number
  /** login attempts per minute per IP + username */
  login: number
  /** login attempts per minute per username, whatever the IP */
  loginPerUser: number
  /** backup creations per minute per IP */
  create: number
}
export const DEFAULT_RATE_LIMITS: RateLimits = { global: 300, login: 5, loginPerUser: 20, create: 20 }

const MINUTE = 60_000

export default fp<{ limits: RateLimits }>(async (fastify, opts) => {
  await fastify.register(rateLimit, {
    global: true,
    max: opts.limits.global,
    timeWindow: MINUTE,
    errorResponseBuilder: (_request, context) =>
      new PgkeepError('RATE_LIMITED', `too many requests; retry in ${context.after}`),
  })
}, { name: 'pgkeep-rate-limit' })

/**
 * Login attempts count twice. Per client IP + username: one guesser stops after a few tries while other accounts
 * stay usable. Per username alone: a guesser who rotates addresses (or forges X-Forwarded-For) stops too; the
 * account's owner then waits out the same minute, the price of not letting a botnet guess freely.
 * With a shared counter (the catalog's), attempts are counted across every instance, so spreading the guesses over
 * them gains nothing; without one, in this process.
 */
export function loginAttemptLimit (fastify: FastifyInstance, limits: RateLimits, shared?: LoginAttemptCounter): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  // runs as a preHandler: the body is parsed and validated by then
  const username = (request: FastifyRequest): string => (request.body as { username: string }).username
  type Verdict = { exceeded: boolean, ttlSeconds: number }
  const counter = (max: number, key: (req: FastifyRequest) => string): ((req: FastifyRequest) => Promise<Verdict>) => {
    if (shared) return async req => await shared.hit(key(req), max, MINUTE)
    const limit = fastify.createRateLimit({ max, timeWindow: MINUTE, keyGenerator: key })
    return async req => {
      const verdict = await limit(req)
      return verdict.isAllowed ? { exceeded: false, ttlSeconds: 0 } : { exceeded: verdict.isExceeded, ttlSeconds: verdict.ttlInSeconds }
    }
  }
  const perClient = counter(limits.login, req => `login|${req.ip}|${username(req)}`)
  const perUser = counter(limits.loginPerUser, req => `login-user|${username(req)}`)
  return async (request, reply) => {
    for (const limit of [perClient, perUser]) {
      const verdict = await limit(request)
      if (verdict.exceeded) {
        void reply.header('retry-after', verdict.ttlSeconds)
        throw new PgkeepError('RATE_LIMITED', `too many login attempts for "${username(request)}"; retry in ${verdict.ttlSeconds} s`)
      }
    }
  }
}

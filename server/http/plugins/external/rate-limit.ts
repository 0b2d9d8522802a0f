import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import { PgkeepError } from '../../../errors.ts'

export interface RateLimits {
  /** requests per minute per client IP, every route */
  global: number
  /** login attempts per minute per IP + username */
  login: number
  /** backup creations per minute per IP */
  create: number
}
export const DEFAULT_RATE_LIMITS: RateLimits = { global: 300, login: 5, create: 20 }

export default fp<{ limits: RateLimits }>(async (fastify, opts) => {
  await fastify.register(rateLimit, {
    global: true,
    max: opts.limits.global,
    timeWindow: 60_000,
    errorResponseBuilder: (_request, context) =>
      new PgkeepError('RATE_LIMITED', `too many requests; retry in ${context.after}`),
  })
}, { name: 'pgkeep-rate-limit' })

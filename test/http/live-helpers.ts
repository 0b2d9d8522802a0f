import type WebSocket from 'ws'
import { Compile } from 'typebox/compile'
import type { FastifyInstance } from 'fastify'
import type { Role } from '../../schemas/auth.ts'
import { ServerEvent } from '../../schemas/events.ts'
import { buildApp, type AppDeps } from '../../server/http/app.ts'
import type { Config } from '../../server/config.ts'

export const JWT_SECRET = 'pgkeep-test-jwt-secret-0123456789abcdef'
export const checkServerEvent = Compile(ServerEvent)

/** buildApp with a fixed JWT secret, quiet logs and no rate limits in the way; ready to inject. */
export async function buildTestApp (config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const app = await buildApp({ ...config, jwtSecret: JWT_SECRET, dev: false, logLevel: 'warn' }, {
    logStream: { write () {} },
    rateLimits: { global: 1_000_000, create: 1_000_000, login: 1_000_000 },
    ...deps,
  })
  await app.ready()
  return app
}

/** An API token of that role (revocable by its name). */
export async function tokenFor (app: FastifyInstance, role: Role, name = `t-${role}`): Promise<string> {
  return (await app.tokens.create(JWT_SECRET, { name, role, createdBy: 'test' })).token
}

/** Collects every message of a socket from the start and lets a test wait for the one it wants. */
export class Inbox {
  readonly messages: any[] = []
  readonly invalid: unknown[] = []
  #waiters: { pred: (m: any) => boolean, resolve: (m: any) => void }[] = []
  closed = false

  constructor (ws: WebSocket) {
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString())
      if (!checkServerEvent.Check(msg)) this.invalid.push(msg)
      // non-enumerable: comparisons of the message itself stay exact
      Object.defineProperty(msg, 'receivedAt', { value: Date.now(), enumerable: false })
      this.messages.push(msg)
      this.#waiters = this.#waiters.filter(w => {
        if (!w.pred(msg)) return true
        w.resolve(msg)
        return false
      })
    })
    ws.on('close', () => { this.closed = true })
  }

  async next (pred: (m: any) => boolean, timeoutMs = 30_000): Promise<any> {
    const hit = this.messages.find(pred)
    if (hit) return hit
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a WebSocket message')), timeoutMs)
      this.#waiters.push({ pred, resolve: (m) => { clearTimeout(timer); resolve(m) } })
    })
  }
}

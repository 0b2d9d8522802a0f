import type { Test } from 'tap'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Role } from '../../schemas/auth.ts'
import type { Config } from '../../server/config.ts'
import { buildApp, type AppDeps } from '../../server/http/app.ts'
import { TEST_PASSWORD, type TestCluster } from '../helpers/pg-cluster.ts'
import { testConfig } from '../helpers/sample-db.ts'
import { openService } from '../helpers/service.ts'

export const SECRET = 'http-suite-jwt-secret-5e1f0c2b9a8d7e6f4c3b'
export const ADMIN_PASSWORD = 'admin password 123'
export { TEST_PASSWORD }

export interface TestApp {
  app: FastifyInstance
  config: Config
  /** every pino line the app wrote */
  logs: string[]
  /** API tokens, one per role */
  token: Record<Role, string>
  /** inject with `Authorization: Bearer <token of role>`; role undefined = no auth */
  as (role: Role | undefined, opts: InjectOptions): Promise<LightMyRequestResponse>
}

/**
 * A real BackupService on the throwaway cluster, an app around it (logs captured), an admin user and an
 * API token of every role. Rate limits stay out of the way unless a test passes its own.
 */
export async function setupApp (t: Test, cluster: TestCluster, database: string, deps: AppDeps = {}, patch: Partial<Config> = {}): Promise<TestApp> {
  const base = testConfig(cluster, database)
  t.teardown(base.cleanup)
  const config: Config = { ...base, jwtSecret: SECRET, dev: false, logLevel: 'info', minFreeBytes: 0, ...patch }
  const service = await openService(config)
  t.teardown(() => service.close({ cancelRunning: true }))
  const logs: string[] = []
  const app = await buildApp(config, {
    service,
    logStream: { write (line: string) { logs.push(line) } },
    rateLimits: { global: 100_000, create: 100_000, login: 100_000 },
    ...deps,
  })
  t.teardown(() => app.close())
  await app.ready()
  await app.users.add('root', 'admin', ADMIN_PASSWORD)
  const token = {} as Record<Role, string>
  for (const role of ['viewer', 'operator', 'admin'] as const) token[role] = (await app.tokens.create(SECRET, { name: `suite-${role}`, role, createdBy: 'test' })).token
  const as = (role: Role | undefined, opts: InjectOptions): Promise<LightMyRequestResponse> =>
    app.inject({ ...opts, headers: { ...opts.headers, ...(role ? { authorization: `Bearer ${token[role]}` } : {}) } })
  return { app, config, logs, token, as }
}

/** Lines of the audit log, oldest first. */
export async function auditLines (app: FastifyInstance): Promise<Record<string, unknown>[]> {
  const page = await app.auditLog.page(1, 500)
  return page.items.reverse() as unknown as Record<string, unknown>[]
}

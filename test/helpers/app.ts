import type { Test } from 'tap'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Role } from '../../schemas/auth.ts'
import type { Config } from '../../server/config.ts'
import type { BackupService } from '../../server/engine/backup-service.ts'
import { buildApp, type AppDeps } from '../../server/http/app.ts'
import { openService } from './service.ts'

/** The one JWT secret of every app a test builds, in-process or (as PGKEEP_JWT_SECRET) in a child. */
export const TEST_JWT_SECRET = 'pgkeep-test-jwt-secret-0123456789abcdef'
export const ADMIN_PASSWORD = 'admin password 123'
/** Rate limits far out of the way; a test of the limits passes its own. */
export const NO_LIMITS = { global: 1_000_000, create: 1_000_000, login: 1_000_000, loginPerUser: 1_000_000 }

export interface TestApp {
  app: FastifyInstance
  config: Config
  service: BackupService
  /** every pino line the app wrote */
  logs: string[]
  /** API tokens, one per role */
  token: Record<Role, string>
  /** inject with `Authorization: Bearer <token of role>`; role undefined = no auth */
  as (role: Role | undefined, opts: InjectOptions): Promise<LightMyRequestResponse>
  /** POST /api/backup/create as an operator, waited for; throws unless it completed. Resolves to its id. */
  completedBackup (body?: Record<string, unknown>): Promise<string>
}

export interface BuildOptions {
  deps?: AppDeps
  /**
   * The service the app drives: by default one opened here with quick retries and closed at teardown;
   * 'app' lets the app open and close its own, as `pgkeep serve` does (for tests that restart the app).
   */
  service?: BackupService | 'app'
}

/** The config every test app runs with: the test secret, no free-space floor in the way. */
export function appConfig (config: Config): Config {
  return { ...config, jwtSecret: TEST_JWT_SECRET, dev: false, minFreeBytes: 0 }
}

/**
 * The app as tests build it, not yet listening, on a config made by appConfig() (the very object: a test may
 * change it afterwards): logs captured into `logs`, rate limits out of the way unless deps say otherwise.
 * For a test that restarts the app on the same config (the browser stack).
 */
export async function newApp (config: Config, deps: AppDeps = {}, logs: string[] = []): Promise<FastifyInstance> {
  const app = await buildApp(config, {
    logStream: { write (line: string) { logs.push(line) } },
    rateLimits: NO_LIMITS,
    ...deps,
  })
  await app.ready()
  return app
}

/**
 * A ready app over a real BackupService, closed at teardown, with an admin user `root` (ADMIN_PASSWORD)
 * and an API token of every role.
 */
export async function build (t: Test, config: Config, opts: BuildOptions = {}): Promise<TestApp> {
  const full = appConfig(config)
  let service = opts.service === 'app' ? undefined : opts.service
  if (opts.service === undefined) {
    const own = await openService(full)
    t.teardown(() => own.close({ cancelRunning: true }))
    service = own
  }
  const logs: string[] = []
  const app = await newApp(full, { ...(service ? { service } : {}), ...opts.deps }, logs)
  t.teardown(() => app.close())
  // a test that builds the app again on the same backups dir finds its user and tokens there already
  if (!await app.users.get('root')) await app.users.add('root', 'admin', ADMIN_PASSWORD)
  const token = {} as Record<Role, string>
  for (const role of ['viewer', 'operator', 'admin'] as const) {
    await app.tokens.revoke(`suite-${role}`).catch(() => {})
    token[role] = await tokenFor(app, role, `suite-${role}`)
  }
  const as = (role: Role | undefined, opts: InjectOptions): Promise<LightMyRequestResponse> =>
    app.inject({ ...opts, headers: { ...opts.headers, ...(role ? { authorization: `Bearer ${token[role]}` } : {}) } })
  const completedBackup = async (body: Record<string, unknown> = { compression: 'none' }): Promise<string> => {
    const res = await as('operator', { method: 'POST', url: '/api/backup/create', payload: body })
    if (res.statusCode !== 202) throw new Error(res.body)
    const done = await app.backupService.waitFor(res.json().backup.id)
    if (done.status !== 'completed') throw new Error(JSON.stringify(done.error))
    return done.id
  }
  return { app, config: app.config, service: app.backupService, logs, token, as, completedBackup }
}

/** Another API token of that role (revocable by its name). */
export async function tokenFor (app: FastifyInstance, role: Role, name = `t-${role}`): Promise<string> {
  return (await app.tokens.create(TEST_JWT_SECRET, { name, role, createdBy: 'test' })).token
}

/** Lines of the audit log, oldest first. */
export async function auditLines (app: FastifyInstance): Promise<Record<string, unknown>[]> {
  const page = await app.auditLog.page(1, 500)
  return page.items.reverse() as unknown as Record<string, unknown>[]
}

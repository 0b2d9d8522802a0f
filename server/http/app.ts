import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { DestinationStream } from 'pino'
import { fileURLToPath } from 'node:url'
import type { Config } from '../config.ts'
import { resolveJwtSecret } from '../auth/jwt-secret.ts'
import type { CatalogDb } from '../catalog/catalog-db.ts'
import { openCatalog } from '../catalog/catalog-stores.ts'
import { errorHandler } from './error-codes.ts'
import cookiePlugin from './plugins/external/cookie.ts'
import jwtPlugin from './plugins/external/jwt.ts'
import rateLimitPlugin, { DEFAULT_RATE_LIMITS, type RateLimits } from './plugins/external/rate-limit.ts'
import staticPlugin from './plugins/external/static.ts'
import swaggerPlugin from './plugins/external/swagger.ts'
import backupServicePlugin from './plugins/app/backup-service.ts'
import { BackupService } from '../engine/backup-service.ts'
import authPlugin from './plugins/app/auth.ts'
import auditPlugin from './plugins/app/audit.ts'
import schedulerPlugin from './plugins/app/scheduler.ts'
import notifierPlugin from './plugins/app/notifier.ts'
import type { NotifierOptions } from '../alerts/notifier.ts'
import shutdownPlugin from './plugins/app/shutdown.ts'
import originGuardPlugin from './plugins/app/origin-guard.ts'
import authRoutes from './routes/auth.ts'
import backupRoutes from './routes/backups.ts'
import backupRefRoutes from './routes/backup-refs.ts'
import restoreRoutes from './routes/restores.ts'
import downloadRoutes from './routes/downloads.ts'
import auditRoutes from './routes/audit.ts'
import healthRoutes from './routes/health.ts'
import targetRoutes from './routes/targets.ts'
import metricsRoutes from './routes/metrics.ts'
import wsRoutes from './routes/ws.ts'
import scheduleRoutes from './routes/schedules.ts'
import drillRoutes from './routes/drills.ts'
import drillSchedulerPlugin from './plugins/app/drill-scheduler.ts'
import notificationRoutes from './routes/notifications.ts'
import setRoutes from './routes/sets.ts'
import overviewRoutes from './routes/overview.ts'
import adminRoutes from './routes/admin.ts'

export interface AppDeps {
  /** an already open BackupService (tests, or a caller that manages its life); otherwise the app opens and closes one */
  service?: BackupService
  /** where pino writes (tests capture it); stdout by default */
  logStream?: DestinationStream
  rateLimits?: Partial<RateLimits>
  /** built dashboard; dist/client by default */
  clientDir?: string
  /** on close, cancel running dumps (true) or let the service finish them (false, default) */
  cancelRunningOnClose?: boolean
  /** notification retry tuning (tests shorten the backoff) */
  notifier?: NotifierOptions
  /** an already open shared catalog (tests); otherwise the app opens one when config.catalog is set, and closes it */
  catalog?: CatalogDb
}

const BODY_LIMIT = 64 * 1024
const defaultClientDir = fileURLToPath(new URL('../../dist/client', import.meta.url))

/** A token a client still puts in a URL (nothing accepts it there) must not reach the log. */
function redactUrl (url: string): string {
  return url.replace(/([?&]token=)[^&]*/gi, '$1[redacted]')
}

/**
 * X-Forwarded-* (the cookie's Secure, the client IP) only from the hops or addresses configured, never `true`:
 * fastify would then take the left-most X-Forwarded-For address, which the client writes itself.
 */
function trustedProxies (trust: Config['trustProxy']): FastifyServerOptions['trustProxy'] {
  if (typeof trust === 'number') return (_address: string, hop: number) => hop < trust
  return trust ?? false
}

export async function buildApp (config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const logger: FastifyServerOptions['logger'] = {
    level: config.logLevel,
    ...(deps.logStream ? { stream: deps.logStream } : {}),
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'], censor: '[redacted]' },
    serializers: {
      req: (req: { method: string, url: string, ip?: string }) => ({ method: req.method, url: redactUrl(req.url), ip: req.ip }),
    },
  }
  const app = Fastify({
    logger,
    bodyLimit: BODY_LIMIT,
    trustProxy: trustedProxies(config.trustProxy),
  }).withTypeProvider<TypeBoxTypeProvider>()
  // typebox checks: unknown fields rejected (ajv would silently drop them), bodies never coerced ("42" is not 42),
  // query strings and params converted to the declared types
  app.setValidatorCompiler(TypeBoxValidatorCompiler)
  app.setErrorHandler(errorHandler)
  // bodies are JSON or nothing: text/plain is what a cross-site form or fetch may send without a preflight
  app.removeContentTypeParser('text/plain')

  const secret = await resolveJwtSecret(config)
  const catalog = deps.catalog ?? await openCatalog(config)
  // the first onClose hook added runs last: the catalog outlives every plugin that writes to it on close
  if (catalog !== undefined && deps.catalog === undefined) app.addHook('onClose', async () => { await catalog.close() })
  app.decorate('catalog', catalog)
  let service = deps.service
  const owned = !service
  service ??= await BackupService.open(config, { logger: app.log, registryPollMs: 2000, catalog, worker: config.worker ? 'all' : 'none' })

  await app.register(swaggerPlugin)
  await app.register(cookiePlugin)
  await app.register(jwtPlugin, { secret })
  await app.register(rateLimitPlugin, { limits: { ...DEFAULT_RATE_LIMITS, ...deps.rateLimits } })
  await app.register(backupServicePlugin, { service, owned, cancelRunningOnClose: deps.cancelRunningOnClose ?? false })
  await app.register(authPlugin, { backupDir: config.backupDir, catalog })
  await app.register(auditPlugin, { backupDir: config.backupDir, catalog })
  app.decorate('config', config)
  app.decorate('rateLimits', { ...DEFAULT_RATE_LIMITS, ...deps.rateLimits })
  await app.register(originGuardPlugin)
  await app.register(notifierPlugin, { retry: deps.notifier })
  await app.register(schedulerPlugin)
  await app.register(drillSchedulerPlugin)
  // open requests get a short drain on close, a quarter of the grace at most (the rest is for cancelling dumps)
  await app.register(shutdownPlugin, { drainMs: Math.min(2000, config.http.shutdownGraceMs / 4) })

  await app.register(authRoutes, { prefix: '/api/auth' })
  await app.register(backupRoutes, { prefix: '/api/backup' })
  await app.register(backupRefRoutes, { prefix: '/api/backup' })
  await app.register(downloadRoutes, { prefix: '/api/backup' })
  await app.register(restoreRoutes, { prefix: '/api/restore' })
  await app.register(drillRoutes, { prefix: '/api/drills' })
  await app.register(setRoutes, { prefix: '/api/sets' })
  await app.register(wsRoutes)
  await app.register(scheduleRoutes)
  await app.register(notificationRoutes, { prefix: '/api/notifications' })
  await app.register(auditRoutes, { prefix: '/api/audit' })
  await app.register(healthRoutes, { prefix: '/api/health' })
  await app.register(targetRoutes, { prefix: '/api/targets' })
  await app.register(overviewRoutes, { prefix: '/api/overview' })
  await app.register(adminRoutes, { prefix: '/api', secret })
  await app.register(metricsRoutes)
  await app.register(staticPlugin, { root: deps.clientDir ?? defaultClientDir })
  return app
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    rateLimits: RateLimits
    /** the shared PostgreSQL catalog (config.catalog), one per process; undefined = the file catalog */
    catalog: CatalogDb | undefined
  }
}

import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.ts'
import { EXIT_CANCELLED } from '../exit-status.ts'
import { buildApp, type AppDeps } from './app.ts'
import { identityMismatch } from '../engine/pg/age.ts'

export interface RunningServer {
  app: FastifyInstance
  /** http://host:port actually bound (port 0 picks a free one) */
  url: string
  /** resolves once the server has shut down (signal or close()) */
  closed: Promise<void>
  close (): Promise<void>
}

export const FIRST_ADMIN_HINT = 'no users yet: every API call will be refused until you create the first admin with\n' +
  '  npx pgkeep user add admin --role admin   (from the pgkeep folder; asks for the password)'

/**
 * Listens on config.host:port. On SIGTERM/SIGINT it stops accepting connections and cancels running dumps at
 * once (cleanly: pg_dump stopped, partial files removed, status `cancelled`) rather than wait for a dump that
 * may take hours; open requests get a short drain before they are cut (plugins/app/shutdown.ts); then the
 * audit log is flushed. The process exits within config.http.shutdownGraceMs whatever still hangs (exit 1
 * then). A second signal exits at once.
 */
export async function startServer (config: Config, deps: AppDeps = {}): Promise<RunningServer> {
  const app = await buildApp(config, { cancelRunningOnClose: true, ...deps })
  if (await app.users.isEmpty()) app.log.warn(FIRST_ADMIN_HINT)
  const keyWarning = config.encryption?.identityFile ? await identityMismatch(config.encryption.identityFile, config.encryption.recipients).catch((e: Error) => e.message) : undefined
  if (keyWarning) app.log.warn(keyWarning)
  if (config.dev) app.log.warn('PGKEEP_JWT_SECRET is not set: using the generated secret in <backupDir>/.pgkeep/jwt-secret (fine for one machine; set it for anything shared)')
  const url = await app.listen({ host: config.host, port: config.port })

  let resolveClosed!: () => void
  const closed = new Promise<void>(resolve => { resolveClosed = resolve })
  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= (async () => {
      process.off('SIGTERM', onSignal)
      process.off('SIGINT', onSignal)
      process.once('SIGTERM', forceExit)
      process.once('SIGINT', forceExit)
      try {
        await app.close()
      } finally {
        process.off('SIGTERM', forceExit)
        process.off('SIGINT', forceExit)
        resolveClosed()
      }
    })()
    return closing
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    app.log.info(`${signal}: shutting down (running backups are cancelled)`)
    // the backstop for whatever the orderly close below cannot end in time (a child that ignores SIGKILL,
    // a stuck disk): the grace period is a promise to whoever sent the signal
    setTimeout(() => {
      app.log.error(`shutdown still not done after ${config.http.shutdownGraceMs} ms; exiting anyway`)
      process.exit(1)
    }, config.http.shutdownGraceMs).unref()
    close().catch(err => app.log.error({ err }, 'shutdown failed'))
  }
  const forceExit = (): void => { process.exit(EXIT_CANCELLED) }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)

  return { app, url, closed, close }
}

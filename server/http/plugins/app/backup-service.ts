import fp from 'fastify-plugin'
import type { BackupService } from '../../../engine/backup-service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    backupService: BackupService
  }
}

/**
 * Decorates fastify.backupService. The app closes the service only when it opened it; an injected one
 * (tests, a caller managing its life) belongs to the caller.
 */
export default fp<{ service: BackupService, owned: boolean, cancelRunningOnClose: boolean }>(async (fastify, opts) => {
  fastify.decorate('backupService', opts.service)
  if (!opts.owned) return
  let closing: Promise<void> | undefined
  const close = (): Promise<void> => (closing ??= opts.service.close({ cancelRunning: opts.cancelRunningOnClose }))
  // started before the server waits for open requests: a download that takes an hour must not keep a dump
  // running (or let it complete) for that hour; awaited in onClose, once requests are done or cut
  if (opts.cancelRunningOnClose) fastify.addHook('preClose', async () => { close().catch(() => {}) })
  fastify.addHook('onClose', async () => { await close() })
}, { name: 'pgkeep-backup-service' })

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
  if (opts.owned) fastify.addHook('onClose', async () => { await opts.service.close({ cancelRunning: opts.cancelRunningOnClose }) })
}, { name: 'pgkeep-backup-service' })

import fp from 'fastify-plugin'
import type { Drill } from '../../../../schemas/drill.ts'
import { DrillScheduler } from '../../../schedules/drill-scheduler.ts'

declare module 'fastify' {
  interface FastifyInstance {
    drillScheduler: DrillScheduler
  }
}

/**
 * Scheduled drills (config `drills`) and the `drill.failed` webhook alert, for drills started by any door
 * of this server. Timers start once the app is ready.
 */
export default fp(async (fastify) => {
  const service = fastify.backupService
  const log = fastify.log.child({ component: 'drills' })
  const scheduler = new DrillScheduler(service, fastify.config.drillSchedules ?? [])
  scheduler.on('waiting', ({ target }) => log.info({ target }, 'scheduled drill waits for the target\'s backups to end'))
  scheduler.on('fired', ({ target, drill }) => log.info({ target, drillId: drill.id }, 'schedule started a drill'))
  scheduler.on('run-error', ({ target, error }) => log.error({ target, code: error.code, err: error.message }, 'scheduled drill could not start'))

  // a drill ends with a status other than running once (then once more when its backup carries it): alert once
  const alerted = new Set<string>()
  const onDrill = (d: Drill): void => {
    if (d.status !== 'failed' || alerted.has(d.id)) return
    alerted.add(d.id)
    if (alerted.size > 1000) alerted.delete(alerted.values().next().value as string)
    log.warn({ drillId: d.id, backupId: d.backupId }, 'restore drill failed')
    fastify.notifier.drillFailed(d)
  }
  service.on('drill', onDrill)

  fastify.decorate('drillScheduler', scheduler)
  fastify.addHook('onReady', async () => { scheduler.start() })
  // before the scheduler plugin's onClose flushes alerts (hooks run in reverse order of registration)
  fastify.addHook('onClose', async () => {
    scheduler.close()
    service.off('drill', onDrill)
  })
}, { name: 'pgkeep-drill-scheduler', dependencies: ['pgkeep-backup-service', 'pgkeep-scheduler'] })

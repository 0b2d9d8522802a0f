import fp from 'fastify-plugin'
import type { Config } from '../../../config.ts'
import { Scheduler, type TickClaim } from '../../../schedules/scheduler.ts'
import { scheduleStore } from '../../../catalog/catalog-stores.ts'
import type { CatalogDb } from '../../../catalog/catalog-db.ts'
import { newInstanceId } from '../../../catalog/instances.ts'
import { ScheduleTicks } from '../../../catalog/schedule-ticks.ts'

/** With a shared catalog each tick is run by the one instance whose claim on it wins. */
function tickClaimOn (catalog: CatalogDb): TickClaim {
  const ticks = new ScheduleTicks(catalog)
  const instanceId = newInstanceId()
  return async (schedule, scheduledAt) => await ticks.claim(schedule, scheduledAt, instanceId)
}

declare module 'fastify' {
  interface FastifyInstance {
    scheduler: Scheduler
  }
}

export interface SchedulerPluginOptions {
  /** defaults to fastify.config (decorated by buildApp) */
  config?: Config
}

/**
 * Decorates fastify.scheduler (named schedules, retention cleanup cron); a missed run goes to fastify.notifier.
 * Timers start once the app is ready, so a missed run found at start-up is notified like any other.
 */
export default fp<SchedulerPluginOptions>(async (fastify, opts) => {
  const service = fastify.backupService
  const config = opts.config ?? fastify.config
  const { notifier } = fastify
  const store = await scheduleStore(config.backupDir, fastify.catalog)
  // the scheduler owns the store once open; a refused start (a stored schedule this config cannot run) hands it back
  const claimTick = fastify.catalog !== undefined ? tickClaimOn(fastify.catalog) : undefined
  const scheduler = await Scheduler.open(service, config, { audit: fastify.auditLog, store, ...(claimTick ? { claimTick } : {}) })
    .catch(async (err: unknown) => { await store.close?.(); throw err })
  const log = fastify.log.child({ component: 'scheduler' })

  scheduler.on('missed', ({ schedule, missed }) => {
    log.warn({ schedule, missed }, 'schedule missed a run')
    notifier.notify({ event: 'schedule.missed', schedule: { name: schedule, ...missed } })
  })
  scheduler.on('fired', ({ schedule, backup }) => log.info({ schedule, backupId: backup.id }, 'schedule started a backup'))
  scheduler.on('run-error', ({ schedule, error }) => log.error({ schedule, code: error.code, err: error.message }, 'schedule run failed'))
  scheduler.on('cleanup', ({ result }) => log.info({ deleted: result.deleted.length }, 'scheduled retention cleanup done'))
  scheduler.on('cleanup-error', ({ error }) => log.error({ code: error.code, err: error.message }, 'scheduled retention cleanup failed'))
  scheduler.on('audit-error', ({ action, error }) => log.error({ action, code: error.code, err: error.message }, 'audit entry of a scheduled run not written'))

  fastify.decorate('scheduler', scheduler)
  fastify.addHook('onReady', async () => { await scheduler.start() })
  fastify.addHook('onClose', async () => {
    await scheduler.close()
  })
}, { name: 'pgkeep-scheduler', dependencies: ['pgkeep-backup-service', 'pgkeep-audit', 'pgkeep-notifier'] })

import fp from 'fastify-plugin'
import type { Backup } from '../../../../schemas/backup.ts'
import type { Config } from '../../../config.ts'
import { WebhookNotifier, type WebhookNotifierOptions } from '../../../alerts/webhook-notifier.ts'
import { Scheduler } from '../../../schedules/scheduler.ts'

declare module 'fastify' {
  interface FastifyInstance {
    scheduler: Scheduler
    notifier: WebhookNotifier
  }
}

export interface SchedulerPluginOptions {
  /** defaults to fastify.config (decorated by buildApp) */
  config?: Config
  /** retry tuning for webhook deliveries (tests shorten the backoff) */
  webhook?: WebhookNotifierOptions
  /** how long shutdown waits for alerts still being delivered */
  alertFlushMs?: number
}

/**
 * Decorates fastify.scheduler (named schedules, retention cleanup cron) and fastify.notifier (webhook
 * alerts on failed backups, failed validations and missed schedule runs). Timers start once the app
 * is ready, so a missed run found at start-up is alerted like any other.
 */
export default fp<SchedulerPluginOptions>(async (fastify, opts) => {
  const service = fastify.backupService
  const config = opts.config ?? fastify.config
  const notifier = new WebhookNotifier(config.webhooks, opts.webhook)
  const detach = notifier.attach(service)
  const scheduler = await Scheduler.open(service, config, { audit: fastify.auditLog })
  const log = fastify.log.child({ component: 'scheduler' })

  scheduler.on('missed', ({ schedule, missed }) => {
    log.warn({ schedule, missed }, 'schedule missed a run')
    notifier.scheduleMissed(schedule, missed)
  })
  scheduler.on('fired', ({ schedule, backup }) => log.info({ schedule, backupId: backup.id }, 'schedule started a backup'))
  scheduler.on('run-error', ({ schedule, error }) => log.error({ schedule, code: error.code, err: error.message }, 'schedule run failed'))
  scheduler.on('cleanup', ({ result }) => log.info({ deleted: result.deleted.length }, 'scheduled retention cleanup done'))
  scheduler.on('cleanup-error', ({ error }) => log.error({ code: error.code, err: error.message }, 'scheduled retention cleanup failed'))
  scheduler.on('audit-error', ({ action, error }) => log.error({ action, code: error.code, err: error.message }, 'audit entry of a scheduled run not written'))
  notifier.on('gave-up', (e) => log.warn(e, 'webhook alert not delivered'))

  // the engine's validate() emits nothing, so the validate route's reply is where a failed check shows
  fastify.addHook('onSend', async (request, _reply, payload) => {
    if (request.routeOptions.config?.audit !== 'backup.validate' || typeof payload !== 'string') return payload
    try {
      const backup = (JSON.parse(payload) as { backup?: Backup }).backup
      if (backup?.verification && !backup.verification.ok) notifier.validationFailed(backup)
    } catch { /* not a backup reply (an error): nothing to alert about */ }
    return payload
  })

  fastify.decorate('scheduler', scheduler)
  fastify.decorate('notifier', notifier)
  fastify.addHook('onReady', async () => { await scheduler.start() })
  fastify.addHook('onClose', async () => {
    await scheduler.close()
    detach()
    // give alerts a moment to leave (a failed backup at shutdown is worth telling), never forever
    let timer: NodeJS.Timeout | undefined
    await Promise.race([notifier.idle(), new Promise(resolve => { timer = setTimeout(resolve, opts.alertFlushMs ?? 2000) })])
    clearTimeout(timer)
    notifier.close()
  })
}, { name: 'pgkeep-scheduler', dependencies: ['pgkeep-backup-service', 'pgkeep-audit'] })

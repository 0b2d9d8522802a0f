import fp from 'fastify-plugin'
import type { Backup } from '../../../../schemas/backup.ts'
import type { Config } from '../../../config.ts'
import { configuredChannels, Notifier, type NotifierOptions } from '../../../alerts/notifier.ts'
import { ConditionWatch } from '../../../alerts/condition-watch.ts'

declare module 'fastify' {
  interface FastifyInstance {
    notifier: Notifier
  }
}

export interface NotifierPluginOptions {
  /** defaults to fastify.config (decorated by buildApp) */
  config?: Config
  /** retry tuning (tests shorten the backoff) */
  retry?: NotifierOptions
  /** how long shutdown waits for notices still being delivered */
  flushMs?: number
}

/**
 * Decorates fastify.notifier: the configured notification channels, fed by the engine's backup and restore
 * events, failed validations (the validate route's reply), and the condition watch (stale targets, low disk).
 * Schedules and drills call fastify.notifier.notify() themselves.
 */
export default fp<NotifierPluginOptions>(async (fastify, opts) => {
  const config = opts.config ?? fastify.config
  const service = fastify.backupService
  const notifier = new Notifier(configuredChannels(config), opts.retry)
  const detach = notifier.attach(service)
  const log = fastify.log.child({ component: 'notifier' })
  const onWatchError = (err: unknown): void => { log.warn({ err: (err as Error).message }, 'stale-target or free-space check failed') }
  const watch = new ConditionWatch(service, config, notice => notifier.notify(notice), { onError: onWatchError })
  notifier.on('retrying', (e) => log.info(e, 'notification not delivered yet; retrying'))
  notifier.on('gave-up', (e) => log.warn(e, 'notification not delivered'))
  notifier.on('dropped', (e) => log.warn(e, 'notification dropped: too many waiting for this channel'))

  // a backup that just ended is when free space changes most; the check is a statfs, off the backup's path
  const onStatus = (b: Backup): void => { if (b.status === 'completed' || b.status === 'failed') watch.checkStorage().catch(onWatchError) }
  service.on('status', onStatus)

  // the engine's validate() emits nothing, so the validate route's reply is where a failed check shows
  fastify.addHook('onSend', async (request, _reply, payload) => {
    if (request.routeOptions.config?.audit !== 'backup.validate' || typeof payload !== 'string') return payload
    try {
      const backup = (JSON.parse(payload) as { backup?: Backup }).backup
      if (backup?.verification && !backup.verification.ok) notifier.notify({ event: 'validation.failed', backup })
    } catch { /* not a backup reply (an error): nothing to alert about */ }
    return payload
  })

  fastify.decorate('notifier', notifier)
  fastify.addHook('onReady', async () => {
    watch.start()
    watch.check().catch(onWatchError)
  })
  fastify.addHook('onClose', async () => {
    watch.stop()
    detach()
    service.off('status', onStatus)
    // give notices a moment to leave (a failed backup at shutdown is worth telling), never forever
    let timer: NodeJS.Timeout | undefined
    await Promise.race([notifier.idle(), new Promise(resolve => { timer = setTimeout(resolve, opts.flushMs ?? 2000) })])
    clearTimeout(timer)
    notifier.close()
  })
}, { name: 'pgkeep-notifier', dependencies: ['pgkeep-backup-service'] })

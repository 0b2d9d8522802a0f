import { EventEmitter } from 'node:events'
import type { Backup } from '../../schemas/backup.ts'
import type { DeliveryResult, NotificationChannelInfo, NotificationEvent } from '../../schemas/notifications.ts'
import type { RestoreState } from '../../schemas/restore.ts'
import type { ChannelConfig } from '../config-notifications.ts'
import type { Config } from '../config.ts'
import { NotFoundError } from '../errors.ts'
import { backoffDelay, type RetryPolicy } from '../engine/retry.ts'
import { deliverOnce, destinationOf, secretsOf } from './channels/deliver.ts'
import { DeliveryError } from './channels/http-post.ts'
import { renderMessage, type BackupWarning, type DrillFailure, type Notice } from './notice.ts'

export type { Notice, DrillFailure, BackupWarning }

export interface NotifierOptions {
  /** attempts per notice and channel, the first included (default 5) */
  attempts?: number
  baseDelayMs?: number
  maxDelayMs?: number
  /** the jitter's random source (tests pin it) */
  random?: () => number
  /** notices waiting per channel; past it the oldest is dropped (a channel down for hours must not grow without end) */
  queueLimit?: number
}

/** The subset of BackupService the notifier listens to. */
export interface NotificationSource {
  on (event: 'status', fn: (backup: Backup) => void): unknown
  off (event: 'status', fn: (backup: Backup) => void): unknown
  on (event: 'warning', fn: (warning: BackupWarning) => void): unknown
  off (event: 'warning', fn: (warning: BackupWarning) => void): unknown
  on (event: 'restore', fn: (state: RestoreState) => void): unknown
  off (event: 'restore', fn: (state: RestoreState) => void): unknown
  get? (id: string): Backup
}

/** What the config file's plain `webhooks` list always meant: these events, to a generic webhook. */
const LEGACY_WEBHOOK_EVENTS: NotificationEvent[] = ['backup.failed', 'backup.warning', 'validation.failed', 'schedule.missed', 'drill.failed']

/** Every channel of a configuration: `notifications`, then each URL of `webhooks` as `webhooks-1`, `webhooks-2`, ... */
export function configuredChannels (config: Pick<Config, 'webhooks' | 'notifications'>): ChannelConfig[] {
  return [
    ...config.notifications.channels,
    ...config.webhooks.map((url, i): ChannelConfig => ({ name: `webhooks-${i + 1}`, type: 'webhook', url, headers: {}, events: LEGACY_WEBHOOK_EVENTS, timeoutMs: 10_000 })),
  ]
}

interface Channel {
  config: ChannelConfig
  secrets: string[]
  queue: Notice[]
  draining?: Promise<void>
}

/**
 * Sends notices to the configured channels (Slack, Discord, Teams, Telegram, ntfy, e-mail, generic webhooks).
 * notify() only queues: each channel has its own queue, worked one notice at a time, every attempt bounded by
 * the channel's timeout and retried with the engine's backoffDelay, so a slow or broken channel holds up
 * neither a backup nor the other channels.
 * Emits 'delivered' {channel, type, event, attempts}, 'retrying' {channel, type, event, attempt, delayMs, reason},
 * 'gave-up' {channel, type, event, attempts, reason} and 'dropped' {channel, type, event}; a reason never holds
 * a channel's URL, token or password.
 */
export class Notifier extends EventEmitter {
  readonly #channels = new Map<string, Channel>()
  readonly #retry: RetryPolicy
  readonly #random: () => number
  readonly #queueLimit: number
  readonly #abort = new AbortController()

  constructor (channels: ChannelConfig[], options: NotifierOptions = {}) {
    super()
    for (const config of channels) this.#channels.set(config.name, { config, secrets: secretsOf(config), queue: [] })
    this.#retry = {
      attempts: Math.max(1, options.attempts ?? 5),
      baseDelayMs: options.baseDelayMs ?? 1000,
      maxDelayMs: options.maxDelayMs ?? 60_000,
    }
    this.#random = options.random ?? Math.random
    this.#queueLimit = options.queueLimit ?? 100
  }

  /** The channels as the API shows them. */
  list (): NotificationChannelInfo[] {
    return [...this.#channels.values()].map(({ config }) => ({ name: config.name, type: config.type, events: config.events, destination: destinationOf(config) }))
  }

  /**
   * Queues the notice for every channel that wants its event and returns at once. The entry point of every
   * producer: the backup and restore events (attach), schedules, the condition watch, drills
   * (`notify({ event: 'drill.failed', drill: {...} })`).
   */
  notify (notice: Notice): void {
    if (this.#abort.signal.aborted) return
    for (const ch of this.#channels.values()) {
      if (notice.event === 'test' || !ch.config.events.includes(notice.event)) continue
      if (ch.queue.length >= this.#queueLimit) {
        const dropped = ch.queue.shift()!
        this.emit('dropped', { channel: ch.config.name, type: ch.config.type, event: dropped.event })
      }
      ch.queue.push(notice)
      ch.draining ??= this.#drain(ch).finally(() => { ch.draining = undefined })
    }
  }

  /** A restore drill that failed; for the drills module. */
  drillFailed (drill: DrillFailure): void {
    this.notify({ event: 'drill.failed', drill })
  }

  /**
   * The "send test message" action: one attempt now, outside the queue (a backlog of retries must not hide
   * whether the channel works), and its outcome.
   */
  async test (name: string): Promise<DeliveryResult> {
    const ch = this.#channels.get(name)
    if (!ch) throw new NotFoundError(`notification channel "${name}"`)
    const notice: Notice = { event: 'test', test: { channel: name } }
    const started = performance.now()
    const base = { name, type: ch.config.type }
    try {
      await deliverOnce(ch.config, notice, renderMessage(notice), this.#attemptSignal(ch))
      return { ...base, ok: true, durationMs: Math.round(performance.now() - started) }
    } catch (err) {
      return { ...base, ok: false, durationMs: Math.round(performance.now() - started), error: this.#reason(ch, err) }
    }
  }

  /** Subscribes to the engine: failed and completed backups, warnings, finished restores. Returns the unsubscribe. */
  attach (source: NotificationSource): () => void {
    const backupOf = (id: string): Backup | undefined => {
      try { return source.get?.(id) } catch { return undefined /* gone meanwhile: the id says which */ }
    }
    const onStatus = (backup: Backup, origin?: 'remote'): void => {
      // another instance's job: that instance alerts, once
      if (origin === 'remote') return
      if (backup.status === 'failed') this.notify({ event: 'backup.failed', backup })
      else if (backup.status === 'completed') this.notify({ event: 'backup.succeeded', backup })
    }
    const onWarning = (warning: BackupWarning): void => {
      const backup = backupOf(warning.backupId)
      this.notify({ event: 'backup.warning', warning, ...(backup ? { backup } : {}) })
    }
    const onRestore = (restore: RestoreState): void => {
      if (restore.status === 'running') return
      const backup = backupOf(restore.backupId)
      this.notify({ event: 'restore.finished', restore, ...(backup ? { backup } : {}) })
    }
    source.on('status', onStatus)
    source.on('warning', onWarning)
    source.on('restore', onRestore)
    return () => { source.off('status', onStatus); source.off('warning', onWarning); source.off('restore', onRestore) }
  }

  /** Resolves when every notice queued so far has been delivered or given up. */
  async idle (): Promise<void> {
    for (;;) {
      const running = [...this.#channels.values()].map(ch => ch.draining).filter(p => p !== undefined)
      if (running.length === 0) return
      await Promise.allSettled(running)
    }
  }

  /** Abandons queued notices and pending retries (shutdown). */
  close (): void {
    this.#abort.abort()
    for (const ch of this.#channels.values()) ch.queue.length = 0
  }

  async #drain (ch: Channel): Promise<void> {
    for (let notice = ch.queue.shift(); notice !== undefined && !this.#abort.signal.aborted; notice = ch.queue.shift()) {
      await this.#deliver(ch, notice)
    }
  }

  #attemptSignal (ch: Channel): AbortSignal {
    return AbortSignal.any([this.#abort.signal, AbortSignal.timeout(ch.config.timeoutMs)])
  }

  async #deliver (ch: Channel, notice: Notice): Promise<void> {
    const what = { channel: ch.config.name, type: ch.config.type, event: notice.event }
    const message = renderMessage(notice)
    let reason = ''
    let attempt = 0
    while (++attempt <= this.#retry.attempts) {
      let retryAfterMs = 0
      try {
        await deliverOnce(ch.config, notice, message, this.#attemptSignal(ch))
        this.emit('delivered', { ...what, attempts: attempt })
        return
      } catch (err) {
        if (this.#abort.signal.aborted) return
        reason = this.#reason(ch, err)
        if (!(err instanceof DeliveryError && err.retryable)) break
        retryAfterMs = err.retryAfterMs ?? 0
      }
      if (attempt < this.#retry.attempts) {
        // the service's Retry-After is honoured as a floor, within the same cap
        const delayMs = Math.min(this.#retry.maxDelayMs, Math.max(backoffDelay(attempt, this.#retry, this.#random), retryAfterMs))
        this.emit('retrying', { ...what, attempt, delayMs, reason })
        await this.#sleep(delayMs)
        if (this.#abort.signal.aborted) return
      } else {
        break
      }
    }
    this.emit('gave-up', { ...what, attempts: Math.min(attempt, this.#retry.attempts), reason })
  }

  /** A failure in words fit for a log line or an API reply: the channel's secrets cut out, whatever the service echoed. */
  #reason (ch: Channel, err: unknown): string {
    let text = err instanceof DeliveryError ? err.message : `unexpected error: ${(err as Error).message}`
    for (const secret of ch.secrets) text = text.split(secret).join('[redacted]')
    return text
  }

  async #sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      const timer = setTimeout(resolve, ms)
      timer.unref()
      this.#abort.signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
    })
  }
}

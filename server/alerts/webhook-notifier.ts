import { EventEmitter } from 'node:events'
import type { Backup } from '../../schemas/backup.ts'
import type { WarningEvent } from '../../schemas/events.ts'
import type { MissedRun } from '../../schemas/schedule.ts'
import type { Drill } from '../../schemas/drill.ts'
import { backoffDelay, type RetryPolicy } from '../engine/retry.ts'

export type AlertEvent = 'backup.failed' | 'backup.warning' | 'validation.failed' | 'schedule.missed' | 'drill.failed'

/** A running backup's warning as the engine emits it (schemas/events.ts WarningEvent without its type). */
export type BackupWarning = Omit<WarningEvent, 'type'>

/** The JSON body every webhook receives; `text` makes it a valid Slack incoming-webhook message. */
export interface AlertPayload {
  text: string
  event: AlertEvent
  backup?: Backup
  schedule?: { name: string } & MissedRun
  warning?: BackupWarning
  drill?: Drill
}

export interface WebhookNotifierOptions {
  /** attempts per URL, the first included */
  attempts?: number
  baseDelayMs?: number
  maxDelayMs?: number
  timeoutMs?: number
  /** the jitter's random source (tests pin it) */
  random?: () => number
}

/** The subset of BackupService the notifier listens to. */
export interface AlertSource {
  on (event: 'status', fn: (backup: Backup) => void): unknown
  off (event: 'status', fn: (backup: Backup) => void): unknown
  on (event: 'warning', fn: (warning: BackupWarning) => void): unknown
  off (event: 'warning', fn: (warning: BackupWarning) => void): unknown
  get? (id: string): Backup
}

/**
 * Posts alerts to the configured webhooks. Delivery runs detached from the caller with bounded
 * exponential backoff and full jitter (the engine's backoffDelay, so every retry loop waits alike):
 * a slow or broken receiver must never hold up a backup.
 * Emits 'delivered' ({url, event, attempts}), 'retrying' ({url, event, attempt, delayMs, reason}) and
 * 'gave-up' ({url, event, attempts, reason}) so the
 * server can log outcomes; the reason never carries the URL's query string (it may hold a token).
 */
export class WebhookNotifier extends EventEmitter {
  readonly #urls: string[]
  readonly #retry: RetryPolicy
  readonly #random: () => number
  readonly #timeout: number
  readonly #inflight = new Set<Promise<void>>()
  readonly #abort = new AbortController()

  constructor (urls: string[], options: WebhookNotifierOptions = {}) {
    super()
    this.#urls = urls
    this.#retry = {
      attempts: Math.max(1, options.attempts ?? 5),
      baseDelayMs: options.baseDelayMs ?? 1000,
      maxDelayMs: options.maxDelayMs ?? 60_000,
    }
    this.#random = options.random ?? Math.random
    this.#timeout = options.timeoutMs ?? 10_000
  }

  /** Subscribes to a backup source: a backup that ends `failed` raises an alert. Returns the unsubscribe. */
  attach (source: AlertSource): () => void {
    const onStatus = (b: Backup): void => { if (b.status === 'failed') this.backupFailed(b) }
    const onWarning = (w: BackupWarning): void => {
      let backup: Backup | undefined
      try { backup = source.get?.(w.backupId) } catch { /* gone meanwhile: the id says which */ }
      this.backupWarning(w, backup)
    }
    source.on('status', onStatus)
    source.on('warning', onWarning)
    return () => { source.off('status', onStatus); source.off('warning', onWarning) }
  }

  backupWarning (warning: BackupWarning, backup?: Backup): void {
    const which = backup ? `*${backup.name}* of ${backup.target}/${backup.database}` : warning.backupId
    this.notify({ event: 'backup.warning', text: `:warning: pgkeep backup ${which}: ${warning.message}`, warning, ...(backup ? { backup } : {}) })
  }

  backupFailed (backup: Backup): void {
    const why = backup.error ? `${backup.error.code}: ${backup.error.message}` : 'unknown error'
    this.notify({
      event: 'backup.failed',
      text: `:red_circle: pgkeep backup *${backup.name}* of ${backup.target}/${backup.database} failed (${why})`,
      backup,
    })
  }

  validationFailed (backup: Backup): void {
    const why = backup.verification?.message ?? 'integrity check failed'
    this.notify({
      event: 'validation.failed',
      text: `:warning: pgkeep validation of backup *${backup.name}* (${backup.target}/${backup.database}) failed: ${why}`,
      backup,
    })
  }

  /** A restore drill that ended failed: the checks that did not hold, or why it could not finish. */
  drillFailed (drill: Drill): void {
    const why = drill.error
      ? `${drill.error.code}: ${drill.error.message}`
      : drill.checks.filter(c => !c.ok && !c.skipped).map(c => `${c.name}: ${c.message}`).join('; ') || 'a check failed'
    this.notify({
      event: 'drill.failed',
      text: `:red_circle: pgkeep restore drill of *${drill.backupName}* (${drill.target}) failed: ${why}`,
      drill,
    })
  }

  scheduleMissed (name: string, missed: MissedRun): void {
    const why = missed.reason === 'overlap' ? 'the previous run was still in progress' : 'the server was not running'
    this.notify({
      event: 'schedule.missed',
      text: `:warning: pgkeep schedule *${name}* missed its run at ${missed.scheduledAt}: ${why}`,
      schedule: { name, ...missed },
    })
  }

  /** Queues one delivery per URL and returns at once. */
  notify (payload: AlertPayload): void {
    if (this.#abort.signal.aborted) return
    const body = JSON.stringify(payload)
    for (const url of this.#urls) {
      const p = this.#deliver(url, payload.event, body)
      this.#inflight.add(p)
      void p.finally(() => this.#inflight.delete(p))
    }
  }

  /** Resolves when every delivery queued so far has succeeded or given up. */
  async idle (): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight])
  }

  /** Abandons pending retries (shutdown). */
  close (): void {
    this.#abort.abort()
  }

  async #deliver (url: string, event: AlertEvent, body: string): Promise<void> {
    let reason = ''
    let attempt = 0
    while (++attempt <= this.#retry.attempts) {
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#timeout)]),
          redirect: 'manual',
        })
        await res.body?.cancel()
        if (res.ok) {
          this.emit('delivered', { url: redact(url), event, attempts: attempt })
          return
        }
        reason = `HTTP ${res.status}`
        // a 4xx other than 408/429 will not get better by asking again
        if (res.status < 500 && res.status !== 408 && res.status !== 429) { attempt++; break }
      } catch (err) {
        if (this.#abort.signal.aborted) return
        reason = (err as Error).name === 'TimeoutError' ? 'timed out' : ((err as { cause?: { code?: string } }).cause?.code ?? 'network error')
      }
      if (attempt < this.#retry.attempts) {
        const delayMs = backoffDelay(attempt, this.#retry, this.#random)
        this.emit('retrying', { url: redact(url), event, attempt, delayMs, reason })
        await this.#sleep(delayMs)
      }
      if (this.#abort.signal.aborted) return
    }
    this.emit('gave-up', { url: redact(url), event, attempts: attempt - 1, reason })
  }

  async #sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      const timer = setTimeout(resolve, ms)
      timer.unref()
      this.#abort.signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
    })
  }
}

/** Webhook URLs often embed a token in the path or query (Slack does): keep only scheme and host. */
export function redact (url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}/…`
  } catch {
    return 'invalid-url'
  }
}

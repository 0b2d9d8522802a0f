import type { ListQuery, ListResult } from '../../schemas/backup.ts'
import { staleAfterHoursOf, type Config } from '../config.ts'
import { probeFreeSpace } from '../engine/health.ts'
import type { Notice } from './notice.ts'

/** The subset of BackupService the watch reads. */
export interface BackupLister {
  list (query: ListQuery): ListResult
}

export type WatchConfig = Pick<Config, 'targets' | 'staleAfterHours' | 'backupDir' | 'storage' | 'minFreeBytes' | 'notifications'>

/**
 * Conditions no single event reveals, looked at periodically: a target whose newest completed backup is older
 * than its maximum age (`target.stale`, like Barman's last_backup_maximum_age), and a local backups volume
 * under `minFreeBytes` (`storage.low`, the floor readiness uses). Each is told once when it starts, and again
 * only after it has cleared (a fresh backup, space freed): a reminder every few minutes would be noise.
 * A target that never had a completed backup is measured from the moment the watch started.
 */
export class ConditionWatch {
  readonly #source: BackupLister
  readonly #config: WatchConfig
  readonly #notify: (notice: Notice) => void
  readonly #now: () => number
  readonly #onError: (err: unknown) => void
  readonly #startedAt: number
  readonly #stale = new Set<string>()
  readonly #low = new Set<string>()
  #timer?: NodeJS.Timeout
  #checking?: Promise<void>

  constructor (source: BackupLister, config: WatchConfig, notify: (notice: Notice) => void, opts: { now?: () => number, onError?: (err: unknown) => void } = {}) {
    this.#source = source
    this.#config = config
    this.#notify = notify
    this.#now = opts.now ?? Date.now
    this.#onError = opts.onError ?? (() => {})
    this.#startedAt = this.#now()
  }

  start (): void {
    this.#timer ??= setInterval(() => { this.check().catch(this.#onError) }, this.#config.notifications.checkIntervalMs)
    this.#timer.unref()
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Both checks now; a check already running is joined, not doubled. */
  async check (): Promise<void> {
    this.#checking ??= Promise.all([this.checkStale(), this.checkStorage()]).then(() => {}).finally(() => { this.#checking = undefined })
    await this.#checking
  }

  async checkStale (): Promise<void> {
    const now = this.#now()
    for (const target of Object.values(this.#config.targets)) {
      // the overview's "stale" badge and this alert read the one setting (0 = never stale)
      const maxAgeHours = staleAfterHoursOf(this.#config, target.name)
      if (maxAgeHours === 0) continue
      const newest = this.#source.list({ target: target.name, status: 'completed', sort: 'createdAt', order: 'desc', pageSize: 1 }).items[0]
      const lastAt = newest ? Date.parse(newest.finishedAt ?? newest.createdAt) : undefined
      const stale = now - (lastAt ?? this.#startedAt) > maxAgeHours * 3_600_000
      if (!stale) {
        this.#stale.delete(target.name)
        continue
      }
      if (this.#stale.has(target.name)) continue
      this.#stale.add(target.name)
      this.#notify({
        event: 'target.stale',
        target: { name: target.name, maxAgeHours, ...(newest ? { lastBackupAt: newest.finishedAt ?? newest.createdAt, lastBackupName: newest.name } : {}) },
      })
    }
  }

  /** The catalog's directory and every local storage location; S3 has no free space to speak of. */
  async checkStorage (): Promise<void> {
    const { minFreeBytes, backupDir, storage } = this.#config
    if (minFreeBytes <= 0) return
    const dirs = [...new Set([backupDir, storage.primary, ...storage.copies].filter(d => !d.startsWith('s3://')))]
    await Promise.all(dirs.map(async path => {
      const space = await probeFreeSpace(path, minFreeBytes)
      if (!('freeBytes' in space)) return // unreadable: readiness reports that, it is not "low"
      if (space.ok) {
        this.#low.delete(path)
        return
      }
      if (this.#low.has(path)) return
      this.#low.add(path)
      this.#notify({ event: 'storage.low', storage: { path, freeBytes: space.freeBytes, minFreeBytes } })
    }))
  }
}

import { fileURLToPath } from 'node:url'
import type { Backup } from '../../../schemas/backup.ts'
import type { StorageConfig } from '../../config.ts'
import { LocalStorage } from './local-storage.ts'
import type { Storage } from './storage.ts'

/** Opens one location as the config says it: an absolute directory or `s3://bucket[/prefix]`. */
export type StorageOpener = (location: string) => Storage

/**
 * The stores of one pgkeep: the primary (where new backups go and whose manifests rebuild the catalog), the
 * copy destinations written at the same time, and any store an older record names (the config changed since),
 * opened on demand with the same credentials.
 */
export class StorageSet {
  readonly primary: Storage
  readonly copies: Storage[]
  readonly #legacy: Storage
  readonly #byUrl = new Map<string, Storage>()
  readonly #open: StorageOpener

  constructor (config: { backupDir: string, storage: StorageConfig }, open: StorageOpener) {
    this.#open = open
    this.primary = this.#remember(open(config.storage.primary))
    this.copies = config.storage.copies.map(c => this.#remember(open(c)))
    // records written before backups named their storage are in the backups dir
    this.#legacy = this.#byUrl.get(new LocalStorage(config.backupDir).url) ?? new LocalStorage(config.backupDir)
  }

  #remember (s: Storage): Storage {
    this.#byUrl.set(s.url, s)
    return s
  }

  /** Every store a new dump is written to: the primary first. */
  destinations (): Storage[] {
    return [this.primary, ...this.copies]
  }

  /**
   * What a new record says about its store: nothing when it is the backups dir itself (so a backups dir moved
   * elsewhere still finds its backups), the primary's URL otherwise.
   */
  primaryField (): Pick<Backup, 'storage'> {
    return this.primary === this.#legacy ? {} : { storage: this.primary.url }
  }

  /** The backups dir and every configured store: where a crash can have left unfinished writes. */
  configured (): Storage[] {
    return [...new Set([this.#legacy, this.primary, ...this.copies])]
  }

  /** The store holding a backup's data and manifest. */
  of (backup: Pick<Backup, 'storage'>): Storage {
    return backup.storage === undefined ? this.#legacy : this.byUrl(backup.storage)
  }

  /** The stores holding a completed copy of the backup besides its own (what a delete or a pin also reaches). */
  copiesOf (backup: Pick<Backup, 'copies'>): Storage[] {
    return (backup.copies ?? []).filter(c => c.status === 'completed').map(c => this.byUrl(c.storage))
  }

  byUrl (url: string): Storage {
    const known = this.#byUrl.get(url)
    if (known) return known
    return this.#remember(this.#open(url.startsWith('file://') ? fileURLToPath(url) : url))
  }
}

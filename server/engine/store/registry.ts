import { AsyncLocalStorage } from 'node:async_hooks'
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Backup } from '../../../schemas/backup.ts'
import type { CatalogDb } from '../../catalog/catalog-db.ts'
import { PgRegistryBackend } from '../../catalog/pg-registry.ts'
import { removeStaleTempFiles } from './atomic-file.ts'
import { PgkeepError } from '../../errors.ts'
import { FileRegistryBackend } from './file-registry.ts'
import { LocalStorage } from '../storage/local-storage.ts'
import type { Storage } from '../storage/storage.ts'
import type { RecordChange, RegistryBackend } from './registry-backend.ts'
import { RegistryView } from './registry-view.ts'

export { REGISTRY_FILE } from './file-registry.ts'

const insideUpdate = new AsyncLocalStorage<{ registry: Registry, done: boolean }>()

export interface RegistryOptions {
  onWarning?: (message: string) => void
  /** where the manifests are: what a lost catalog is rebuilt from (default: the backups dir) */
  manifests?: Storage
  /** the shared PostgreSQL catalog; absent: registry.json in the backups dir */
  catalog?: CatalogDb
}

/**
 * The index of all backups: every read is synchronous, from memory (RegistryView); every write goes through
 * the backend (registry.json under its lock file, or the PostgreSQL catalog), which also brings in what other
 * processes wrote. Within this process writes are serialised here, across processes by the backend.
 */
export class Registry {
  readonly backupDir: string
  /** where the manifests are: what a lost catalog is rebuilt from */
  readonly manifests: Storage
  readonly #view: RegistryView
  readonly #backend: RegistryBackend
  #chain: Promise<unknown> = Promise.resolve()
  #writes = 0
  readonly #remoteListeners: Array<(changes: RecordChange[]) => void> = []

  private constructor (backupDir: string, manifests: Storage, view: RegistryView, backend: RegistryBackend) {
    this.backupDir = backupDir
    this.manifests = manifests
    this.#view = view
    this.#backend = backend
    backend.onRemoteChange = changes => {
      // heard while catching up, possibly inside one of our updates: a listener may start updates of its own
      insideUpdate.exit(() => { for (const l of this.#remoteListeners) l(changes) })
    }
  }

  /** Changes other instances made (the shared catalog only), after they are in the view. */
  onRemoteChange (listener: (changes: RecordChange[]) => void): void {
    this.#remoteListeners.push(listener)
  }

  static async open (backupDir: string, opts?: RegistryOptions): Promise<Registry> {
    const dir = resolve(backupDir)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await mkdir(join(dir, '.pgkeep'), { recursive: true, mode: 0o700 })
    const manifests = opts?.manifests ?? new LocalStorage(dir)
    const onWarning = opts?.onWarning ?? (() => {})
    const view = new RegistryView()
    const backend = opts?.catalog !== undefined
      ? new PgRegistryBackend(opts.catalog, view, { manifests, onWarning, isBackupDir: manifests.url === new LocalStorage(dir).url })
      : new FileRegistryBackend(dir, view, manifests, onWarning)
    const registry = new Registry(dir, manifests, view, backend)
    // registry.json's and the manifests' leftovers from a writer killed mid-write
    await removeStaleTempFiles(dir)
    try {
      await registry.reload()
    } catch (err) {
      await backend.close()
      throw err
    }
    return registry
  }

  /** registry.json, or the catalog: for messages */
  get label (): string { return this.#backend.label }

  /** how many updates this process has stored (each one a lock, two fsyncs and a rename for registry.json) */
  get writeCount (): number { return this.#writes }

  all (): Backup[] { return this.#view.all() }
  /** all() without the copy, for readers that only read (a list at 100,000 backups) */
  ordered (): readonly Backup[] { return this.#view.ordered() }
  get (id: string): Backup | undefined { return this.#view.get(id) }
  findByName (name: string): Backup | undefined { return this.#view.findByName(name) }

  /**
   * Applies fn to the current records (brought up to date under the backend's lock) and stores what it changed.
   * Throwing in fn writes nothing. fn must not call update/put/remove itself (rejected: it would deadlock).
   */
  update<T> (fn: (backups: Map<string, Backup>) => T | Promise<T>): Promise<T> {
    return this.#serialized(async frame => {
      const result = await this.#backend.update(async backups => {
        try {
          return await fn(backups)
        } finally {
          // fn is over: what it merely started may use the registry now, even while the backend still stores its changes
          frame.done = true
        }
      })
      this.#writes++
      return result
    })
  }

  async put (backup: Backup): Promise<void> {
    await this.update(m => { m.set(backup.id, backup) })
  }

  async remove (id: string): Promise<void> {
    await this.update(m => { m.delete(id) })
  }

  /** Picks up the other processes' writes; cheap when nothing changed. */
  async reload (): Promise<void> {
    if (await this.#backend.refresh()) return
    await this.#serialized(async () => { await this.#backend.repair() })
  }

  /** Rewrites the records from the `*.manifest.json` files (pgkeep reindex); returns how many manifests were used. */
  rebuildFromManifests (): Promise<number> {
    return this.#serialized(async () => await this.#backend.rebuildFromManifests())
  }

  /** Stops following other processes' writes (the catalog's notifications); the file registry has nothing to stop. */
  async close (): Promise<void> {
    await this.#chain
    await this.#backend.close()
  }

  #serialized<T> (fn: (frame: { done: boolean }) => Promise<T>): Promise<T> {
    // A registry call from inside an update fn would wait for itself forever: fail loudly instead.
    const frame = insideUpdate.getStore()
    if (frame?.registry === this && !frame.done) {
      return Promise.reject(new PgkeepError('INTERNAL', 'registry update called from inside another update of the same registry'))
    }
    const run = async (): Promise<T> => {
      // `done` lets work that fn merely started (and that outlives it) use the registry afterwards.
      const mine = { registry: this, done: false }
      try {
        return await insideUpdate.run(mine, fn, mine)
      } finally {
        mine.done = true
      }
    }
    const p = this.#chain.then(run, run)
    this.#chain = p.catch(() => {})
    return p
  }
}

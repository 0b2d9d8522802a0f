import type { Backup } from '../../../schemas/backup.ts'

/** A record another process changed: `before` is absent for a new record, `after` for a deleted one. */
export interface RecordChange { before?: Backup, after?: Backup }

/**
 * Where the registry's records are kept and how writers on other processes or hosts are excluded: the file
 * (registry.json under a lock file, store/file-registry.ts) or the PostgreSQL catalog
 * (catalog/pg-registry.ts). A backend is made for one RegistryView and keeps it up to date; the Registry
 * serialises calls within the process, the backend across processes.
 */
export interface RegistryBackend {
  /** what the records are called in messages: `registry.json`, `the catalog` */
  readonly label: string
  /**
   * Brings the view up to date with the stored records (cheap when nothing changed). false: the stored records
   * need a repair first (missing, corrupt), to be done through repair() under the registry's serialisation.
   */
  refresh (): Promise<boolean>
  repair (): Promise<void>
  /** Under the writers' lock: the view caught up, fn applied to the records, what it changed stored and then shown. */
  update<T> (fn: (backups: Map<string, Backup>) => T | Promise<T>): Promise<T>
  /** Rewrites the records from the manifests (pgkeep reindex); how many manifests were used. */
  rebuildFromManifests (): Promise<number>
  close (): Promise<void>
  /**
   * Told of the changes other processes made, once they are in the view (the catalog's backend; the file backend
   * never calls it: its processes share a host and the pid rules, not events).
   */
  onRemoteChange?: (changes: RecordChange[]) => void
}

import type { Stats } from 'node:fs'
import { open, rename, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { Backup } from '../../../schemas/backup.ts'
import { writeFileAtomic } from './atomic-file.ts'
import { withFileLock } from './file-lock.ts'
import { LocalStorage } from '../storage/local-storage.ts'
import type { Storage } from '../storage/storage.ts'
import { firstProblem, isValidBackup, recordsForWrite, trustBackup } from './record-check.ts'
import { rebuildRecords } from './rebuild.ts'
import type { RegistryBackend } from './registry-backend.ts'
import { sortNewestFirst, type RegistryView } from './registry-view.ts'

export const REGISTRY_FILE = 'registry.json'

type DiskState =
  | { kind: 'ok', backups: Backup[], stamp: string }
  | { kind: 'missing' }
  | { kind: 'corrupt', reason: string, valid: Backup[] }

/** trusted: the bytes are the very ones this process last checked or wrote (same inode, size, mtime). */
export function parseRegistry (text: string, trusted: boolean): { backups: Backup[] } | { reason: string, valid: Backup[] } {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return { reason: 'not valid JSON', valid: [] }
  }
  const doc = raw as { registryVersion?: unknown, backups?: unknown }
  if (typeof doc !== 'object' || doc === null || doc.registryVersion !== 1 || !Array.isArray(doc.backups)) {
    return { reason: 'not a { registryVersion: 1, backups: [] } document', valid: [] }
  }
  const valid: Backup[] = []
  const seen = new Set<string>()
  let invalid = 0
  let problem = ''
  for (const record of doc.backups as unknown[]) {
    if (trusted) trustBackup(record as Backup)
    if (isValidBackup(record)) {
      if (!seen.has(record.id)) valid.push(record)
      seen.add(record.id)
    } else {
      invalid++
      if (!problem) problem = firstProblem(record)
    }
  }
  if (invalid > 0) return { reason: `${invalid} record(s) do not match the Backup schema, first: ${problem}`, valid }
  return { backups: valid }
}

function stampOf (st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}`
}

/**
 * The file catalog: backupDir/registry.json, shared by the server and the CLI. Every write holds the
 * inter-process lock and re-reads the file first, so neither process overwrites the other's changes.
 */
export class FileRegistryBackend implements RegistryBackend {
  readonly label = 'registry.json'
  readonly path: string
  readonly lockPath: string
  readonly #view: RegistryView
  readonly #backupDir: string
  readonly #manifests: Storage
  readonly #onWarning: (message: string) => void
  #stamp = ''
  /** bumped on every write: a slower concurrent reload must not replace a newer view */
  #writes = 0

  constructor (backupDir: string, view: RegistryView, manifests: Storage, onWarning: (message: string) => void) {
    this.#backupDir = backupDir
    this.#view = view
    this.#manifests = manifests
    this.#onWarning = onWarning
    this.path = join(backupDir, REGISTRY_FILE)
    this.lockPath = join(backupDir, '.pgkeep', 'registry.lock')
  }

  /** Picks up the other process's writes; cheap when the file has not changed (same inode, size and mtime). */
  async refresh (): Promise<boolean> {
    const writesBefore = this.#writes
    const state = await this.#readDisk(this.#stamp)
    if (state === 'unchanged') return true
    if (state.kind === 'ok') {
      if (this.#writes === writesBefore) this.#setView(state.backups, state.stamp)
      return true
    }
    // Missing or corrupt: repaired under the lock (re-checking there, the other process may have repaired it already).
    return false
  }

  async repair (): Promise<void> {
    await withFileLock(this.lockPath, async () => { await this.#readForWrite() })
  }

  /** Applies fn to the current records (re-read under the lock) and writes the result atomically. */
  async update<T> (fn: (backups: Map<string, Backup>) => T | Promise<T>): Promise<T> {
    return await withFileLock(this.lockPath, async () => {
      const map = new Map((await this.#readForWrite()).map(b => [b.id, b]))
      const result = await fn(map)
      await this.#write([...map.values()])
      return result
    })
  }

  async rebuildFromManifests (): Promise<number> {
    return await withFileLock(this.lockPath, async () => {
      const state = await this.#readDisk()
      const existing = state === 'unchanged' || state.kind === 'missing' ? [] : state.kind === 'ok' ? state.backups : state.valid
      const { merged, fromManifests } = await this.#rebuild(existing)
      await this.#write(merged)
      return fromManifests.length
    })
  }

  async close (): Promise<void> {}

  async #rebuild (existing: Backup[]): Promise<{ merged: Backup[], fromManifests: Backup[], warnings: string[] }> {
    const isBackupDir = this.#manifests.url === new LocalStorage(this.#backupDir).url
    return await rebuildRecords(this.#manifests, existing, { isBackupDir, onWarning: this.#onWarning, catalogName: this.label })
  }

  async #readDisk (skipIfStamp?: string): Promise<DiskState | 'unchanged'> {
    let fh
    try {
      fh = await open(this.path, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' }
      throw err
    }
    try {
      // fstat and read on one descriptor: the stamp always describes exactly the bytes parsed.
      const st = await fh.stat()
      const stamp = stampOf(st)
      if (skipIfStamp !== undefined && stamp === skipIfStamp) return 'unchanged'
      const parsed = parseRegistry(await fh.readFile('utf8'), this.#stamp !== '' && stamp === this.#stamp)
      return 'backups' in parsed ? { kind: 'ok', backups: parsed.backups, stamp } : { kind: 'corrupt', ...parsed }
    } finally {
      await fh.close()
    }
  }

  /** Under the lock: the records on disk, repairing a missing or corrupt file first (never silently losing it). */
  async #readForWrite (): Promise<Backup[]> {
    const state = await this.#readDisk()
    if (state === 'unchanged') throw new Error('unreachable')
    if (state.kind === 'ok') return state.backups
    let aside = ''
    if (state.kind === 'corrupt') {
      aside = `${this.path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`
      await rename(this.path, aside)
    }
    const { merged, fromManifests: backups, warnings } = await this.#rebuild(state.kind === 'corrupt' ? state.valid : [])
    await this.#write(merged)
    // A fresh backups dir has no registry yet and nothing to rebuild: that is not worth a warning.
    if (state.kind === 'missing' && backups.length === 0 && warnings.length === 0) return merged
    this.#onWarning(state.kind === 'missing'
      ? `registry.json was missing; rebuilt from ${backups.length} manifests`
      : `registry.json was corrupt; rebuilt from ${backups.length} manifests (${state.reason}; ` +
        `${state.valid.length} valid records salvaged; the damaged file is kept as ${basename(aside)})`)
    return merged
  }

  async #write (records: Backup[]): Promise<void> {
    const sorted = sortNewestFirst(recordsForWrite(records))
    await writeFileAtomic(this.path, `${JSON.stringify({ registryVersion: 1, backups: sorted }, null, 2)}\n`, 0o640)
    this.#writes++
    // Stamp what we just wrote so the next refresh() skips the parse; the content is ours (we hold the lock).
    const st = await stat(this.path)
    this.#setView(sorted, stampOf(st))
  }

  #setView (backups: Backup[], stamp: string): void {
    this.#view.replace(backups)
    this.#stamp = stamp
  }
}

import { AsyncLocalStorage } from 'node:async_hooks'
import type { Stats } from 'node:fs'
import { mkdir, open, rename, stat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { Compile } from 'typebox/compile'
import { Backup } from '../../../schemas/backup.ts'
import { removeStaleTempFiles, writeFileAtomic } from './atomic-file.ts'
import { PgkeepError } from '../../errors.ts'
import { withFileLock } from './file-lock.ts'
import { scanManifests } from './manifest.ts'
import { LocalStorage } from '../storage/local-storage.ts'
import type { Storage } from '../storage/storage.ts'
import { manifestLags, mergeSafetyFacts, recordInManifest } from './safety-facts.ts'

export const REGISTRY_FILE = 'registry.json'
const checkBackup = Compile(Backup)
const insideUpdate = new AsyncLocalStorage<{ registry: Registry, done: boolean }>()

type DiskState =
  | { kind: 'ok', backups: Backup[], stamp: string }
  | { kind: 'missing' }
  | { kind: 'corrupt', reason: string, valid: Backup[] }

/**
 * Records known to match the schema: parsed from a checked file or checked before being written. Saves
 * re-checking thousands of unchanged records on every update (records are replaced, never mutated in place).
 */
const validated = new WeakSet<Backup>()

function isValid (record: unknown): record is Backup {
  if (typeof record === 'object' && record !== null && validated.has(record as Backup)) return true
  if (!checkBackup.Check(record)) return false
  validated.add(record)
  return true
}

/** trusted: the bytes are the very ones this process last checked or wrote (same inode, size, mtime). */
function parseRegistry (text: string, trusted: boolean): { backups: Backup[] } | { reason: string, valid: Backup[] } {
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
  let firstProblem = ''
  for (const record of doc.backups as unknown[]) {
    if (trusted) validated.add(record as Backup)
    if (isValid(record)) {
      if (!seen.has(record.id)) valid.push(record)
      seen.add(record.id)
    } else {
      invalid++
      if (!firstProblem) {
        const e = [...checkBackup.Errors(record)][0]
        firstProblem = `${e?.instancePath || '/'} ${e?.message ?? 'does not match the schema'}`
      }
    }
  }
  if (invalid > 0) return { reason: `${invalid} record(s) do not match the Backup schema, first: ${firstProblem}`, valid }
  return { backups: valid }
}

function stampOf (st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}`
}

/** Newest first by createdAt, then by id (UUIDv7, time-ordered); each date parsed once, not per comparison. */
function sortNewestFirst (backups: Backup[]): Backup[] {
  return backups
    .map(b => ({ b, ms: Date.parse(b.createdAt) }))
    .sort((x, y) => (y.ms - x.ms) || (x.b.id < y.b.id ? 1 : x.b.id > y.b.id ? -1 : 0))
    .map(x => x.b)
}

/**
 * Manifests win for what the file is; pin and verification are merged (safety-facts.ts: a pin in either holds,
 * the newer verification wins). A completed record without a manifest has lost its self-description
 * (usually: deleted by hand) and is dropped; records of jobs in flight or that failed have no manifest and are kept.
 */
function mergeWithManifests (existing: Backup[], fromManifests: Backup[]): Backup[] {
  const current = new Map(existing.map(b => [b.id, b]))
  const out = new Map<string, Backup>()
  for (const m of fromManifests) {
    const e = current.get(m.id)
    if (e === undefined) out.set(m.id, m)
    else if (e.status !== 'completed') out.set(m.id, e)
    else {
      const merged: Backup = { ...m, ...mergeSafetyFacts(e, m) }
      if (merged.verification === undefined) delete merged.verification
      out.set(m.id, merged)
    }
  }
  for (const e of existing) if (!out.has(e.id) && e.status !== 'completed') out.set(e.id, e)
  return [...out.values()]
}

/**
 * The index of all backups (backupDir/registry.json). Shared by the server and the CLI: every write holds the
 * inter-process lock and re-reads the file first, so neither process overwrites the other's changes.
 */
export class Registry {
  readonly backupDir: string
  readonly path: string
  readonly lockPath: string
  #onWarning: (message: string) => void
  #sorted: Backup[] = []
  #byId = new Map<string, Backup>()
  #byName = new Map<string, Backup>()
  #stamp = ''
  /** bumped on every write: a slower concurrent reload must not replace a newer view */
  #writes = 0
  #chain: Promise<unknown> = Promise.resolve()

  /** where the manifests are: what a lost registry.json is rebuilt from */
  readonly manifests: Storage

  private constructor (backupDir: string, manifests: Storage, onWarning?: (message: string) => void) {
    this.backupDir = backupDir
    this.manifests = manifests
    this.path = join(backupDir, REGISTRY_FILE)
    this.lockPath = join(backupDir, '.pgkeep', 'registry.lock')
    this.#onWarning = onWarning ?? (() => {})
  }

  static async open (backupDir: string, opts?: { onWarning?: (message: string) => void, manifests?: Storage }): Promise<Registry> {
    const dir = resolve(backupDir)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await mkdir(join(dir, '.pgkeep'), { recursive: true, mode: 0o700 })
    const registry = new Registry(dir, opts?.manifests ?? new LocalStorage(dir), opts?.onWarning)
    // registry.json's and the manifests' leftovers from a writer killed mid-write
    await removeStaleTempFiles(dir)
    await registry.reload()
    return registry
  }

  /** how many times this process has written registry.json (each write is a lock, two fsyncs and a rename) */
  get writeCount (): number { return this.#writes }

  all (): Backup[] { return this.#sorted.slice() }
  get (id: string): Backup | undefined { return this.#byId.get(id) }
  findByName (name: string): Backup | undefined { return this.#byName.get(name) }

  /**
   * Applies fn to the current records (re-read under the lock) and writes the result atomically.
   * Throwing in fn writes nothing. fn must not call update/put/remove itself (rejected: it would deadlock).
   */
  update<T> (fn: (backups: Map<string, Backup>) => T | Promise<T>): Promise<T> {
    return this.#serialized(async () => {
      const map = new Map((await this.#readForWrite()).map(b => [b.id, b]))
      const result = await fn(map)
      await this.#write([...map.values()])
      return result
    })
  }

  async put (backup: Backup): Promise<void> {
    await this.update(m => { m.set(backup.id, backup) })
  }

  async remove (id: string): Promise<void> {
    await this.update(m => { m.delete(id) })
  }

  /** Picks up the other process's writes; cheap when the file has not changed (same inode, size and mtime). */
  async reload (): Promise<void> {
    const writesBefore = this.#writes
    const state = await this.#readDisk(this.#stamp)
    if (state === 'unchanged') return
    if (state.kind === 'ok') {
      if (this.#writes === writesBefore) this.#setView(state.backups, state.stamp)
      return
    }
    // Missing or corrupt: repair under the lock (re-checking there, the other process may have repaired it already).
    await this.#serialized(async () => { await this.#readForWrite() })
  }

  /** Rewrites the registry from the `*.manifest.json` files (pgkeep reindex); returns how many manifests were used. */
  rebuildFromManifests (): Promise<number> {
    return this.#serialized(async () => {
      const state = await this.#readDisk()
      const existing = state === 'unchanged' || state.kind === 'missing' ? [] : state.kind === 'ok' ? state.backups : state.valid
      const { backups, warnings } = await scanManifests(this.manifests, { isBackupDir: this.manifests.url === new LocalStorage(this.backupDir).url })
      for (const w of warnings) this.#onWarning(w)
      const merged = mergeWithManifests(existing, backups)
      await this.#catchUpManifests(merged, backups)
      await this.#write(merged)
      return backups.length
    })
  }

  #serialized<T> (fn: () => Promise<T>): Promise<T> {
    // A registry call from inside an update fn would wait for itself forever: fail loudly instead.
    const frame = insideUpdate.getStore()
    if (frame?.registry === this && !frame.done) {
      return Promise.reject(new PgkeepError('INTERNAL', 'registry update called from inside another update of the same registry'))
    }
    const run = (): Promise<T> => withFileLock(this.lockPath, async () => {
      // `done` lets work that fn merely started (and that outlives it) use the registry afterwards.
      const mine = { registry: this, done: false }
      try {
        return await insideUpdate.run(mine, fn)
      } finally {
        mine.done = true
      }
    })
    const p = this.#chain.then(run, run)
    this.#chain = p.catch(() => {})
    return p
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
    const { backups, warnings } = await scanManifests(this.manifests, { isBackupDir: this.manifests.url === new LocalStorage(this.backupDir).url })
    for (const w of warnings) this.#onWarning(w)
    const merged = mergeWithManifests(state.kind === 'corrupt' ? state.valid : [], backups)
    await this.#catchUpManifests(merged, backups)
    await this.#write(merged)
    // A fresh backups dir has no registry yet and nothing to rebuild: that is not worth a warning.
    if (state.kind === 'missing' && backups.length === 0 && warnings.length === 0) return merged
    this.#onWarning(state.kind === 'missing'
      ? `registry.json was missing; rebuilt from ${backups.length} manifests`
      : `registry.json was corrupt; rebuilt from ${backups.length} manifests (${state.reason}; ` +
        `${state.valid.length} valid records salvaged; the damaged file is kept as ${basename(aside)})`)
    return merged
  }

  /**
   * Under the lock, before the registry write: manifests that lack a pin or verification the registry held (written
   * before manifests kept them, or by a writer that crashed between the two files) get them, so the next rebuild
   * has them too.
   */
  async #catchUpManifests (merged: Backup[], fromManifests: Backup[]): Promise<void> {
    const described = new Map(fromManifests.map(b => [b.id, b]))
    for (const b of merged) {
      const m = described.get(b.id)
      if (b.status !== 'completed' || m === undefined || !manifestLags(m, b)) continue
      if (!await recordInManifest(this.manifests, b)) this.#onWarning(`manifest of ${b.name} could not be read; its pin and verification are only in registry.json`)
    }
  }

  async #write (records: Backup[]): Promise<void> {
    // `{ ...b, error: undefined }` is a natural way to clear a field; on disk it is simply absent.
    const backups = records.map(b => Object.values(b).some(v => v === undefined)
      ? Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined)) as Backup
      : b)
    const bad = backups.find(b => !isValid(b))
    if (bad !== undefined) {
      const e = [...checkBackup.Errors(bad)][0]
      throw new PgkeepError('INTERNAL', `refusing to write an invalid registry record ${(bad as { id?: string }).id ?? '?'}: ${e?.instancePath || '/'} ${e?.message ?? ''}`)
    }
    const sorted = sortNewestFirst(backups)
    await writeFileAtomic(this.path, `${JSON.stringify({ registryVersion: 1, backups: sorted }, null, 2)}\n`, 0o640)
    this.#writes++
    // Stamp what we just wrote so the next reload() skips the parse; the content is ours (we hold the lock).
    const st = await stat(this.path)
    this.#setView(sorted, stampOf(st))
  }

  #setView (backups: Backup[], stamp: string): void {
    this.#sorted = sortNewestFirst(backups)
    this.#byId = new Map(this.#sorted.map(b => [b.id, b]))
    this.#byName = new Map()
    // Newest wins when two records share a name (only possible after a hand edit).
    for (let i = this.#sorted.length - 1; i >= 0; i--) this.#byName.set(this.#sorted[i].name, this.#sorted[i])
    this.#stamp = stamp
  }
}

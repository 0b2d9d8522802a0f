import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { isAbsolute, join, normalize, relative, sep } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Type, type Static } from 'typebox'
import { compileOnUse } from '../../compile-on-use.ts'
import { Backup } from '../../../schemas/backup.ts'
import { IntegrityError, PgkeepError } from '../../errors.ts'
import { MANIFEST_SUFFIX, manifestKey, type Storage } from '../storage/storage.ts'

export const ManifestFile = Type.Object({
  /** relative to the backups dir, '/'-separated */
  path: Type.String({ minLength: 1 }),
  sizeBytes: Type.Integer({ minimum: 0 }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
})
export type ManifestFile = Static<typeof ManifestFile>

export const Manifest = Type.Object({
  manifestVersion: Type.Literal(1),
  backup: Backup,
  files: Type.Array(ManifestFile),
})
export type Manifest = Static<typeof Manifest>

const checkManifest = compileOnUse(Manifest)
const checkBackup = compileOnUse(Backup)

export { MANIFEST_SUFFIX, manifestKey }

/**
 * A backup's files in one store: the manifest first, so a crash in between leaves data nobody lists (found by
 * nothing), never a manifest without its data. Deleting what is not there is not an error.
 */
export async function deleteBackupFiles (storage: Storage, backupName: string): Promise<void> {
  await storage.delete(manifestKey(backupName))
  await storage.delete(backupName)
}

/** Where a local backups dir keeps a manifest (for tests and tools that look at the files themselves). */
export function manifestPath (backupDir: string, backupName: string): string {
  return join(backupDir, manifestKey(backupName))
}

/** A manifest path is later joined to the backups dir for downloads and checks: it must stay inside. */
function isSafeRelativePath (p: string): boolean {
  if (isAbsolute(p) || p.includes('\\') || p.includes('\0')) return false
  const n = normalize(p)
  return n === p && n !== '.' && n !== '..' && !n.startsWith(`..${sep}`)
}

function firstError (check: typeof checkManifest | typeof checkBackup, value: unknown): string {
  const e = [...check.Errors(value)][0]
  return e ? `${e.instancePath || '/'} ${e.message}` : 'does not match the schema'
}

export async function writeManifest (storage: Storage, backup: Backup, files: ManifestFile[]): Promise<void> {
  const manifest: Manifest = { manifestVersion: 1, backup, files }
  if (!checkManifest.Check(manifest)) {
    throw new PgkeepError('INTERNAL', `refusing to write an invalid manifest for ${backup.name}: ${firstError(checkManifest, manifest)}`)
  }
  const bad = files.find(f => !isSafeRelativePath(f.path))
  if (bad) throw new PgkeepError('INTERNAL', `manifest file path "${bad.path}" is not relative to the backups dir`)
  await storage.writeText(manifestKey(backup.name), `${JSON.stringify(manifest, null, 2)}\n`)
}

/** Reads and validates a manifest; anything malformed is an IntegrityError saying what is wrong. */
export async function readManifest (storage: Storage, backupName: string): Promise<Manifest> {
  const what = `manifest ${manifestKey(backupName)}`
  let text: string
  try {
    text = await storage.readText(manifestKey(backupName))
  } catch (err) {
    const e = err as PgkeepError
    // a store that cannot be reached is not a damaged manifest: that error goes up as it is
    if (e?.code?.startsWith?.('STORAGE_')) throw err
    throw new IntegrityError(`${what} cannot be read (${e?.code === 'NOT_FOUND' ? 'missing' : e?.message ?? 'error'})`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new IntegrityError(`${what} is not valid JSON (truncated or damaged)`)
  }
  if (!checkManifest.Check(raw)) throw new IntegrityError(`${what} is malformed: ${firstError(checkManifest, raw)}`)
  const bad = raw.files.find(f => !isSafeRelativePath(f.path))
  if (bad) throw new IntegrityError(`${what} names a file outside the backups dir: ${bad.path}`)
  return raw
}

export async function hashFile (path: string): Promise<{ sizeBytes: number, sha256: string }> {
  const hash = createHash('sha256')
  let sizeBytes = 0
  await pipeline(createReadStream(path), async function * (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      sizeBytes += chunk.length
      hash.update(chunk)
    }
  })
  return { sizeBytes, sha256: hash.digest('hex') }
}

/**
 * Hashes a file, or every file under a directory (format directory), sorted by path.
 * Paths are relative to root: hashTree(backupDir, name) gives manifest-ready entries; hashTree(dir) hashes dir itself.
 */
export async function hashTree (root: string, relPath?: string): Promise<ManifestFile[]> {
  const out: ManifestFile[] = []
  async function walk (abs: string): Promise<void> {
    const st = await stat(abs)
    if (st.isDirectory()) {
      for (const name of (await readdir(abs)).sort()) await walk(join(abs, name))
    } else if (st.isFile()) {
      const rel = relative(root, abs).split(sep).join('/')
      out.push({ path: rel, ...(await hashFile(abs)) })
    }
  }
  await walk(relPath === undefined ? root : join(root, relPath))
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/** The single sha256 of a directory-format backup: over the sorted "sha256  path" lines, like sha256sum output. */
export function digestOfFiles (files: ReadonlyArray<Pick<ManifestFile, 'path' | 'sha256'>>): string {
  // byte-order sort by path, not locale: the checksum must not depend on the machine it is computed on
  const byPath = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  return createHash('sha256').update(byPath.map(f => `${f.sha256}  ${f.path}\n`).join('')).digest('hex')
}

/**
 * The backups the directory describes by itself: every readable `*.manifest.json` whose data is still present,
 * as completed records (a manifest is only written for a finished dump). Problems come back as warnings, never throws.
 */
export async function scanManifests (storage: Storage, opts: { isBackupDir: boolean }): Promise<{ backups: Backup[], warnings: string[] }> {
  const warnings: string[] = []
  const byId = new Map<string, Backup>()
  const objects = await storage.list()
  const present = new Set(objects.map(o => o.key))
  const names = objects.map(o => o.key).filter(n => n.endsWith(MANIFEST_SUFFIX) && !n.includes('/'))
  for (const name of names) {
    let manifest: Manifest
    try {
      manifest = await readManifest(storage, name.slice(0, -MANIFEST_SUFFIX.length))
    } catch (err) {
      if ((err as PgkeepError)?.code?.startsWith?.('STORAGE_')) throw err
      warnings.push(`skipped ${(err as Error).message}`)
      continue
    }
    const b = manifest.backup
    if (`${b.name}${MANIFEST_SUFFIX}` !== name) {
      warnings.push(`skipped manifest ${name}: it describes ${b.name}`)
      continue
    }
    if (!isSafeRelativePath(b.name)) {
      warnings.push(`skipped manifest ${name}: backup name is not a plain file name`)
      continue
    }
    if (!present.has(b.name)) {
      warnings.push(`skipped manifest ${name}: its backup ${b.name} is missing`)
      continue
    }
    if (byId.has(b.id)) {
      warnings.push(`skipped manifest ${name}: backup id ${b.id} already described by ${byId.get(b.id)?.name}${MANIFEST_SUFFIX}`)
      continue
    }
    // where the manifest was found is where the backup is now, whatever it said when written (a copy store
    // rebuilding the catalog); the backups dir itself is what a record without `storage` means
    const record: Backup = { ...b, status: 'completed' }
    if (opts.isBackupDir) delete record.storage
    else record.storage = storage.url
    delete record.ownerPid
    delete record.error
    byId.set(b.id, record)
  }
  return { backups: [...byId.values()], warnings }
}

import type { Backup } from '../../../schemas/backup.ts'
import { IntegrityError } from '../../errors.ts'
import type { ManifestFile } from '../store/manifest.ts'
import type { Storage } from '../storage/storage.ts'

/** One file of a backup as a reader needs it: where it lies and what its manifest promises. */
export interface VerifiedFile {
  /** the file on disk, when the store is a local directory */
  abs?: string
  /** as in the manifest, and the key in the store: relative to its root, '/'-separated */
  path: string
  sizeBytes: number
  sha256: string
}

/** A completed backup that passed the check for reading, with its files. */
export interface VerifiedBackup {
  backup: Backup
  isDirectory: boolean
  files: VerifiedFile[]
  /** where to read the files from */
  storage: Storage
}

export interface ReadPolicy {
  storage: Storage
  /** a verification younger than this is trusted if every file still has its manifest size */
  maxAgeSeconds: number
  /** the full check (re-hash + structure), storing its result; resolves with the updated record */
  validate: () => Promise<Backup>
}

function recentlyVerified (backup: Backup, maxAgeSeconds: number): boolean {
  const v = backup.verification
  return v?.ok === true && (Date.now() - Date.parse(v.at)) / 1000 <= maxAgeSeconds
}

async function sizesMatch (storage: Storage, files: VerifiedFile[]): Promise<boolean> {
  for (const f of files) {
    const st = await storage.stat(f.path)
    if (!st || st.isDirectory || st.sizeBytes !== f.sizeBytes) return false
  }
  return true
}

/**
 * Before the first byte is read: a backup verified ok within maxAgeSeconds gets a size check of every file
 * against its manifest (a truncation shows there); otherwise, or when a size differs, a full validate.
 * A failed check refuses the backup (INTEGRITY_FAILED) rather than hand out bytes nobody can restore.
 */
export async function openVerifiedFiles (backup: Backup, layout: { isDirectory: boolean, files: ManifestFile[] }, policy: ReadPolicy): Promise<VerifiedBackup> {
  const { storage } = policy
  // localPath refuses a manifest path that escapes the backups dir (a tampered manifest, not a file to read)
  const files = layout.files.map(f => ({ ...(storage.localPath ? { abs: storage.localPath(f.path) } : {}), path: f.path, sizeBytes: f.sizeBytes, sha256: f.sha256 }))
  if (files.length === 0) throw new IntegrityError(`backup ${backup.name} has no file in its manifest`)
  if (recentlyVerified(backup, policy.maxAgeSeconds) && await sizesMatch(storage, files)) return { backup, isDirectory: layout.isDirectory, files, storage }
  const checked = await policy.validate()
  if (!checked.verification?.ok) throw new IntegrityError(`backup ${backup.name} failed its integrity check: ${checked.verification?.message ?? 'checksum mismatch'}; it will not be served`)
  return { backup: checked, isDirectory: layout.isDirectory, files, storage }
}

import { stat } from 'node:fs/promises'
import { relative, resolve, sep } from 'node:path'
import type { Backup } from '../../../schemas/backup.ts'
import { IntegrityError } from '../../errors.ts'
import type { ManifestFile } from '../store/manifest.ts'

/** One file of a backup as a reader needs it: where it lies and what its manifest promises. */
export interface VerifiedFile {
  /** absolute, inside the backups dir */
  abs: string
  /** as in the manifest: relative to the backups dir, '/'-separated */
  path: string
  sizeBytes: number
  sha256: string
}

/** A completed backup that passed the check for reading, with its files. */
export interface VerifiedBackup {
  backup: Backup
  isDirectory: boolean
  files: VerifiedFile[]
}

export interface ReadPolicy {
  backupDir: string
  /** a verification younger than this is trusted if every file still has its manifest size */
  maxAgeSeconds: number
  /** the full check (re-hash + structure), storing its result; resolves with the updated record */
  validate: () => Promise<Backup>
}

/** Manifest paths are relative to the backups dir; one that escapes it is a tampered manifest, not a file to read. */
function inside (backupDir: string, rel: string): string {
  const abs = resolve(backupDir, rel)
  if (relative(backupDir, abs).startsWith('..') || !abs.startsWith(backupDir + sep)) throw new IntegrityError(`manifest names a file outside the backups dir: ${rel}`)
  return abs
}

function recentlyVerified (backup: Backup, maxAgeSeconds: number): boolean {
  const v = backup.verification
  return v?.ok === true && (Date.now() - Date.parse(v.at)) / 1000 <= maxAgeSeconds
}

async function sizesMatch (files: VerifiedFile[]): Promise<boolean> {
  for (const f of files) {
    const st = await stat(f.abs).catch(() => undefined)
    if (!st || st.size !== f.sizeBytes) return false
  }
  return true
}

/**
 * Before the first byte is read: a backup verified ok within maxAgeSeconds gets a size check of every file
 * against its manifest (a truncation shows there); otherwise, or when a size differs, a full validate.
 * A failed check refuses the backup (INTEGRITY_FAILED) rather than hand out bytes nobody can restore.
 */
export async function openVerifiedFiles (backup: Backup, layout: { isDirectory: boolean, files: ManifestFile[] }, policy: ReadPolicy): Promise<VerifiedBackup> {
  const root = resolve(policy.backupDir)
  const files = layout.files.map(f => ({ abs: inside(root, f.path), path: f.path, sizeBytes: f.sizeBytes, sha256: f.sha256 }))
  if (files.length === 0) throw new IntegrityError(`backup ${backup.name} has no file in its manifest`)
  if (recentlyVerified(backup, policy.maxAgeSeconds) && await sizesMatch(files)) return { backup, isDirectory: layout.isDirectory, files }
  const checked = await policy.validate()
  if (!checked.verification?.ok) throw new IntegrityError(`backup ${backup.name} failed its integrity check: ${checked.verification?.message ?? 'checksum mismatch'}; it will not be served`)
  return { backup: checked, isDirectory: layout.isDirectory, files }
}

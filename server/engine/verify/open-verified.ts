import { pipeline, type Readable } from 'node:stream'
import type { Backup } from '../../../schemas/backup.ts'
import { IntegrityError } from '../../errors.ts'
import type { ManifestFile } from '../store/manifest.ts'
import type { ByteRange, Storage } from '../storage/storage.ts'
import { hashCheck } from './checked-read.ts'
import { PooledCheckedRead } from './pooled-checked-read.ts'

/** One file of a backup as a reader needs it: where it lies and what its manifest promises. */
export interface VerifiedFile {
  /** the file on disk, when the store is a local directory */
  abs?: string
  /** as in the manifest, and the key in the store: relative to its root, '/'-separated */
  path: string
  sizeBytes: number
  sha256: string
}

export interface ReadOptions {
  /** runs once the backup was flagged and before the stream fails (an adapter's audit line) */
  onCut?: (err: IntegrityError) => Promise<void>
  /**
   * The reader is an HTTP response piped from the stream, and this says how many bytes it has not yet handed to the
   * kernel (its `writableLength`): a local file is then read into a few reused buffers (`PooledCheckedRead`)
   */
  consumerHeld?: () => number
}

/** A completed backup whose files have their manifest sizes, and the only ways to read them. */
export interface VerifiedBackup {
  backup: Backup
  isDirectory: boolean
  files: VerifiedFile[]
  /** where the files lie (for their metadata; read their bytes through `read` and `readRange`) */
  storage: Storage
  /** A whole file, hashed as it is read: it fails before its last chunk, and flags the backup, if it does not match. */
  read: (file: VerifiedFile, opts?: ReadOptions) => Promise<Readable>
  /**
   * Part of a file. A part cannot be hashed against the manifest, so it is served only on the strength of a good
   * full verification younger than maxAgeSeconds; without one, the full check runs first (INTEGRITY_FAILED if it fails).
   */
  readRange: (file: VerifiedFile, range: ByteRange) => Promise<Readable>
}

export interface ReadPolicy {
  storage: Storage
  /** a good verification younger than this lets a partial range be served without checking the file again */
  maxAgeSeconds: number
  /** the full check (re-hash + structure), storing its result; resolves with the updated record */
  validate: () => Promise<Backup>
  /** records a failed verification (the bytes read no longer match the manifest), and says so in the log */
  flag: (message: string) => Promise<void>
}

function recentlyVerified (backup: Backup, maxAgeSeconds: number): boolean {
  const v = backup.verification
  return v?.ok === true && (Date.now() - Date.parse(v.at)) / 1000 <= maxAgeSeconds
}

async function sizeProblem (storage: Storage, files: VerifiedFile[]): Promise<string | undefined> {
  for (const f of files) {
    const st = await storage.stat(f.path)
    if (!st || st.isDirectory) return `${f.path} is missing from ${storage.url}`
    if (st.sizeBytes !== f.sizeBytes) return `${f.path} has ${st.sizeBytes} bytes, its manifest says ${f.sizeBytes}`
  }
  return undefined
}

async function requireGood (checked: Backup): Promise<Backup> {
  if (!checked.verification?.ok) throw new IntegrityError(`backup ${checked.name} failed its integrity check: ${checked.verification?.message ?? 'checksum mismatch'}; it will not be served`)
  return checked
}

/**
 * The download integrity policy. Before the first byte only what is cheap: every file's size against its manifest
 * (a truncation shows there; a mismatch flags the backup and refuses it). The bytes themselves are checked as
 * they are sent (`read`), so the first byte never waits for a full read, whatever the size or the age of the last
 * validation. Two cases still take the full check first: a backup whose last verification failed (it may have
 * been repaired since; if not, it is refused with no bytes sent), and a partial range with no recent good
 * verification (a part cannot be hashed alone).
 */
export async function openVerifiedFiles (backup: Backup, layout: { isDirectory: boolean, files: ManifestFile[] }, policy: ReadPolicy): Promise<VerifiedBackup> {
  const { storage } = policy
  // localPath refuses a manifest path that escapes the backups dir (a tampered manifest, not a file to read)
  const files = layout.files.map(f => ({ ...(storage.localPath ? { abs: storage.localPath(f.path) } : {}), path: f.path, sizeBytes: f.sizeBytes, sha256: f.sha256 }))
  if (files.length === 0) throw new IntegrityError(`backup ${backup.name} has no file in its manifest`)
  const wrongSize = await sizeProblem(storage, files)
  if (wrongSize !== undefined) {
    await policy.flag(wrongSize)
    throw new IntegrityError(`backup ${backup.name} failed its integrity check: ${wrongSize}; it will not be served`)
  }
  let current = backup.verification?.ok === false ? await requireGood(await policy.validate()) : backup
  return {
    backup: current,
    isDirectory: layout.isDirectory,
    files,
    storage,
    read: async (file, opts = {}) => {
      const onMismatch = async (err: IntegrityError): Promise<void> => {
        await policy.flag(err.message)
        await opts.onCut?.(err)
      }
      if (opts.consumerHeld !== undefined && storage.openLocal !== undefined) {
        return new PooledCheckedRead(await storage.openLocal(file.path), file, opts.consumerHeld, onMismatch)
      }
      const check = hashCheck(file, onMismatch)
      // either side failing or going away ends the other: a failed store fails the transfer, a reader that left closes the file
      return pipeline(await storage.read(file.path), check, () => {})
    },
    readRange: async (file, range) => {
      if (!recentlyVerified(current, policy.maxAgeSeconds)) current = await requireGood(await policy.validate())
      return await storage.read(file.path, range)
    },
  }
}

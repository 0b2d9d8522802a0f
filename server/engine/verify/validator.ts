import { createHash } from 'node:crypto'
import { readdir, stat } from 'node:fs/promises'
import { isAbsolute, join, normalize, relative, sep } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { Backup } from '../../../schemas/backup.ts'
import { checkPlainFile, runPgRestoreCheck, type CheckOutcome } from './archive-check.ts'
import { PgkeepError } from '../../errors.ts'
import { createDecoders } from '../pg/backup-codec.ts'
import { digestOfFiles, manifestKey, readManifest } from '../store/manifest.ts'
import type { Storage } from '../storage/storage.ts'
import { findPgTool } from '../pg/tools.ts'

export interface ValidationResult {
  ok: boolean
  /** e.g. 'sha256+pg_restore', 'sha256+sql-trailer' */
  method: string
  /** the reason when not ok */
  message?: string
}

export interface ValidateOptions {
  pgBinDir?: string
  /** the age identity file for an encrypted backup; without it only sizes and checksums are checked */
  identityFile?: string
  signal?: AbortSignal
  /** how long pg_restore may still run once its input has ended (it spins for ever on some truncated tars) */
  eofGraceMs?: number
}

interface ListedFile { path: string, sizeBytes: number, sha256: string }

function methodFor (backup: Backup): string {
  return backup.format === 'plain' ? 'sha256+sql-trailer' : 'sha256+pg_restore'
}

/** What an encrypted backup's check says when no identity was configured: the bytes are the ones written, no more. */
export const ENCRYPTED_CHECKSUM_ONLY = 'sha256 only (encrypted; no age identity configured, so the archive structure was not checked)'

function cancelledIf (signal?: AbortSignal): void {
  if (signal?.aborted) throw new PgkeepError('CANCELLED', 'validation cancelled')
}

/** Manifest paths are relative to the backups dir and must stay inside this backup. */
function safePath (p: unknown, backupName: string): string | undefined {
  if (typeof p !== 'string' || p === '' || isAbsolute(p)) return undefined
  const n = normalize(p)
  if (n.startsWith('..') || (n !== backupName && !n.startsWith(backupName + sep))) return undefined
  return n
}

async function loadListedFiles (backup: Backup, storage: Storage): Promise<ListedFile[] | string> {
  const mName = manifestKey(backup.name)
  let manifest: Awaited<ReturnType<typeof readManifest>>
  try {
    manifest = await readManifest(storage, backup.name)
  } catch (err) {
    // a store out of reach is not a verdict on the backup
    if ((err as PgkeepError)?.code?.startsWith?.('STORAGE_')) throw err
    // readManifest says what is wrong (missing, not JSON, malformed) in its IntegrityError
    return (err as Error)?.message ?? `manifest ${mName} cannot be read`
  }
  if (manifest?.backup?.id !== undefined && manifest.backup.id !== backup.id) {
    return `manifest ${mName} describes backup ${manifest.backup.id}, not ${backup.id}`
  }
  if (!Array.isArray(manifest?.files) || manifest.files.length === 0) return `manifest ${mName} lists no files`
  const files: ListedFile[] = []
  for (const f of manifest.files) {
    const path = safePath(f?.path, backup.name)
    if (path === undefined || !Number.isInteger(f.sizeBytes) || typeof f.sha256 !== 'string') {
      return `manifest ${mName} has an invalid entry: ${JSON.stringify(f?.path ?? f)}`
    }
    files.push({ path, sizeBytes: f.sizeBytes, sha256: f.sha256.toLowerCase() })
  }
  if (backup.format !== 'directory' && !files.some(f => f.path === backup.name)) return `manifest does not list ${backup.name}`
  if (backup.format === 'directory' && !files.some(f => f.path === join(backup.name, 'toc.dat'))) return `manifest does not list ${backup.name}/toc.dat`
  return files
}

async function hashObject (storage: Storage, key: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(await storage.read(key), hash, { signal })
  return hash.digest('hex')
}

/** Size first (cheap, and the most telling message for a cut file), then a streamed sha256. */
async function checkFile (storage: Storage, f: ListedFile, signal?: AbortSignal): Promise<string | undefined> {
  const st = await storage.stat(f.path)
  if (st === undefined) return `missing file: ${f.path}`
  if (st.isDirectory) return `not a regular file: ${f.path}`
  const size = st.sizeBytes
  if (size < f.sizeBytes) return `file truncated: ${f.path} has ${size} of ${f.sizeBytes} bytes`
  if (size > f.sizeBytes) return `file size mismatch: ${f.path} has ${size} bytes, the manifest says ${f.sizeBytes}`
  try {
    if (await hashObject(storage, f.path, signal) !== f.sha256) return `sha256 mismatch in ${f.path}`
  } catch (err) {
    cancelledIf(signal)
    if ((err as PgkeepError)?.code?.startsWith?.('STORAGE_')) throw err
    return `read failed: ${f.path}: ${(err as Error).message}`
  }
  return undefined
}

/** A directory backup is exactly its manifest: a stray file means it was tampered with or mixed up. */
async function unlistedFiles (backupDir: string, dirName: string, listed: Set<string>): Promise<string[]> {
  const root = join(backupDir, dirName)
  let entries: string[]
  try {
    entries = await readdir(root, { recursive: true })
  } catch {
    return []
  }
  const extra: string[] = []
  for (const e of entries) {
    const rel = join(dirName, e)
    if (listed.has(rel)) continue
    if ((await stat(join(root, e)).catch(() => undefined))?.isFile()) extra.push(relative(backupDir, join(root, e)))
  }
  return extra
}

async function structuralCheck (backup: Backup, storage: Storage, opts: ValidateOptions): Promise<CheckOutcome> {
  const stream = async (sniff?: 'custom' | 'tar') => ({
    source: await storage.read(backup.name),
    decoders: await createDecoders(backup.compression, backup.encryption ? opts.identityFile : undefined),
    sniff,
  })
  if (backup.format === 'plain') return await checkPlainFile(await stream(), opts.signal)
  const pgRestore = await findPgTool('pg_restore', opts.pgBinDir)
  if (backup.format === 'directory') {
    const dir = storage.localPath?.(backup.name)
    if (dir === undefined) return { ok: false, message: `a directory-format backup cannot be read from ${storage.url}` }
    // pg_dump compresses a directory's data files itself; pg_restore reads them as they are
    return await runPgRestoreCheck(pgRestore.path, ['-f', '/dev/null', '-F', 'd', dir], undefined, opts.signal)
  }
  const fmt = backup.format === 'custom' ? 'c' : 't'
  return await runPgRestoreCheck(pgRestore.path, ['-f', '/dev/null', '-F', fmt], await stream(backup.format), opts.signal, opts.eofGraceMs)
}

/**
 * Trusts nothing but a full read: every file's size and sha256 against the manifest, then a
 * structural check that decompresses and parses the whole backup. A corrupt backup is reported
 * as `ok: false` with a specific reason; only a missing backups dir, a missing tool or a cancel throws.
 */
export async function validateBackup (backup: Backup, storage: Storage, opts: ValidateOptions = {}): Promise<ValidationResult> {
  const checksumOnly = backup.encryption !== undefined && opts.identityFile === undefined
  const method = checksumOnly ? ENCRYPTED_CHECKSUM_ONLY : methodFor(backup)
  const fail = (message: string): ValidationResult => ({ ok: false, method, message })
  cancelledIf(opts.signal)

  const files = await loadListedFiles(backup, storage)
  if (typeof files === 'string') return fail(files)
  for (const f of files) {
    const problem = await checkFile(storage, f, opts.signal)
    cancelledIf(opts.signal)
    if (problem) return fail(problem)
  }
  if (backup.sha256 !== undefined) {
    // the registry's checksum must describe the same bytes as the manifest's, or one of them was swapped
    const expected = backup.format === 'directory' ? [digestOfFiles(files)] : [files.find(f => f.path === backup.name)?.sha256]
    if (!expected.includes(backup.sha256.toLowerCase())) return fail(`sha256 of ${backup.name} in the manifest differs from the registry record`)
  }
  const localRoot = storage.localPath?.('.')
  if (backup.format === 'directory' && localRoot !== undefined) {
    const extra = await unlistedFiles(localRoot, backup.name, new Set(files.map(f => f.path)))
    if (extra.length > 0) return fail(`file not in the manifest: ${extra.slice(0, 3).join(', ')}`)
  }
  if (checksumOnly) return { ok: true, method }

  const outcome = await structuralCheck(backup, storage, opts)
  cancelledIf(opts.signal)
  return outcome.ok ? { ok: true, method } : fail(outcome.message ?? 'structural check failed')
}

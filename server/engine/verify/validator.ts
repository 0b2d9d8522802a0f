import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { basename, isAbsolute, join, normalize, relative, sep } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { Backup } from '../../../schemas/backup.ts'
import { checkPlainFile, runPgRestoreCheck, type CheckOutcome } from './archive-check.ts'
import { NotFoundError, PgkeepError } from '../../errors.ts'
import { digestOfFiles, manifestPath, readManifest } from '../store/manifest.ts'
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
  signal?: AbortSignal
  /** how long pg_restore may still run once its input has ended (it spins for ever on some truncated tars) */
  eofGraceMs?: number
}

interface ListedFile { path: string, sizeBytes: number, sha256: string }

function methodFor (backup: Backup): string {
  return backup.format === 'plain' ? 'sha256+sql-trailer' : 'sha256+pg_restore'
}

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

async function loadListedFiles (backup: Backup, backupDir: string): Promise<ListedFile[] | string> {
  const mPath = manifestPath(backupDir, backup.name)
  let manifest: Awaited<ReturnType<typeof readManifest>>
  try {
    manifest = await readManifest(mPath)
  } catch (err) {
    // readManifest says what is wrong (missing, not JSON, malformed) in its IntegrityError
    return (err as Error)?.message ?? `manifest ${basename(mPath)} cannot be read`
  }
  if (manifest?.backup?.id !== undefined && manifest.backup.id !== backup.id) {
    return `manifest ${basename(mPath)} describes backup ${manifest.backup.id}, not ${backup.id}`
  }
  if (!Array.isArray(manifest?.files) || manifest.files.length === 0) return `manifest ${basename(mPath)} lists no files`
  const files: ListedFile[] = []
  for (const f of manifest.files) {
    const path = safePath(f?.path, backup.name)
    if (path === undefined || !Number.isInteger(f.sizeBytes) || typeof f.sha256 !== 'string') {
      return `manifest ${basename(mPath)} has an invalid entry: ${JSON.stringify(f?.path ?? f)}`
    }
    files.push({ path, sizeBytes: f.sizeBytes, sha256: f.sha256.toLowerCase() })
  }
  if (backup.format !== 'directory' && !files.some(f => f.path === backup.name)) return `manifest does not list ${backup.name}`
  if (backup.format === 'directory' && !files.some(f => f.path === join(backup.name, 'toc.dat'))) return `manifest does not list ${backup.name}/toc.dat`
  return files
}

async function hashFile (path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), hash, { signal })
  return hash.digest('hex')
}

/** Size first (cheap, and the most telling message for a cut file), then a streamed sha256. */
async function checkFile (backupDir: string, f: ListedFile, signal?: AbortSignal): Promise<string | undefined> {
  const full = join(backupDir, f.path)
  let size: number
  try {
    const st = await stat(full)
    if (!st.isFile()) return `not a regular file: ${f.path}`
    size = st.size
  } catch {
    return `missing file: ${f.path}`
  }
  if (size < f.sizeBytes) return `file truncated: ${f.path} has ${size} of ${f.sizeBytes} bytes`
  if (size > f.sizeBytes) return `file size mismatch: ${f.path} has ${size} bytes, the manifest says ${f.sizeBytes}`
  try {
    if (await hashFile(full, signal) !== f.sha256) return `sha256 mismatch in ${f.path}`
  } catch (err) {
    cancelledIf(signal)
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

async function structuralCheck (backup: Backup, backupDir: string, opts: ValidateOptions): Promise<CheckOutcome> {
  const file = join(backupDir, backup.name)
  if (backup.format === 'plain') return await checkPlainFile(file, backup.compression, opts.signal)
  const pgRestore = await findPgTool('pg_restore', opts.pgBinDir)
  if (backup.format === 'directory') {
    // pg_dump compresses a directory's data files itself; pg_restore reads them as they are
    return await runPgRestoreCheck(pgRestore.path, ['-f', '/dev/null', '-F', 'd', file], undefined, opts.signal)
  }
  const fmt = backup.format === 'custom' ? 'c' : 't'
  return await runPgRestoreCheck(pgRestore.path, ['-f', '/dev/null', '-F', fmt],
    { file, compression: backup.compression, sniff: backup.format }, opts.signal, opts.eofGraceMs)
}

/**
 * Trusts nothing but a full read: every file's size and sha256 against the manifest, then a
 * structural check that decompresses and parses the whole backup. A corrupt backup is reported
 * as `ok: false` with a specific reason; only a missing backups dir, a missing tool or a cancel throws.
 */
export async function validateBackup (backup: Backup, backupDir: string, opts: ValidateOptions = {}): Promise<ValidationResult> {
  const method = methodFor(backup)
  const fail = (message: string): ValidationResult => ({ ok: false, method, message })
  if (!(await stat(backupDir).catch(() => undefined))?.isDirectory()) throw new NotFoundError(`backups directory ${backupDir}`)
  cancelledIf(opts.signal)

  const files = await loadListedFiles(backup, backupDir)
  if (typeof files === 'string') return fail(files)
  for (const f of files) {
    const problem = await checkFile(backupDir, f, opts.signal)
    cancelledIf(opts.signal)
    if (problem) return fail(problem)
  }
  if (backup.sha256 !== undefined) {
    // the registry's checksum must describe the same bytes as the manifest's, or one of them was swapped
    const expected = backup.format === 'directory' ? [digestOfFiles(files)] : [files.find(f => f.path === backup.name)?.sha256]
    if (!expected.includes(backup.sha256.toLowerCase())) return fail(`sha256 of ${backup.name} in the manifest differs from the registry record`)
  }
  if (backup.format === 'directory') {
    const extra = await unlistedFiles(backupDir, backup.name, new Set(files.map(f => f.path)))
    if (extra.length > 0) return fail(`file not in the manifest: ${extra.slice(0, 3).join(', ')}`)
  }

  const outcome = await structuralCheck(backup, backupDir, opts)
  cancelledIf(opts.signal)
  return outcome.ok ? { ok: true, method } : fail(outcome.message ?? 'structural check failed')
}

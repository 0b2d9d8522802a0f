import { createHash, type Hash } from 'node:crypto'
import { readdir, stat } from 'node:fs/promises'
import { isAbsolute, join, normalize, relative, sep } from 'node:path'
import { PassThrough, Transform, Writable, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Backup } from '../../../schemas/backup.ts'
import { checkPlainFile, EOF_GRACE_MS, runPgRestoreCheck, sniffHead, type CheckOutcome } from './archive-check.ts'
import { childDecoders, pipedPgRestoreCheck } from './piped-check.ts'
import { feedChild } from '../pg/child-feed.ts'
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

/** The size against the manifest: cheap, and the most telling message for a cut file. */
async function checkSize (storage: Storage, f: ListedFile): Promise<string | undefined> {
  const st = await storage.stat(f.path)
  if (st === undefined) return `missing file: ${f.path}`
  if (st.isDirectory) return `not a regular file: ${f.path}`
  const size = st.sizeBytes
  if (size < f.sizeBytes) return `file truncated: ${f.path} has ${size} of ${f.sizeBytes} bytes`
  if (size > f.sizeBytes) return `file size mismatch: ${f.path} has ${size} bytes, the manifest says ${f.sizeBytes}`
  return undefined
}

/** Hashes what passes, handing every chunk on. */
class Hasher extends Transform {
  readonly hash: Hash = createHash('sha256')
  constructor () { super({ highWaterMark: 4 * 1024 * 1024 }) }
  override _transform (chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk)
    done(null, chunk)
  }
}

const discard = (): Writable => new Writable({ highWaterMark: 4 * 1024 * 1024, write (_chunk, _enc, cb) { cb() } })

/**
 * One read of a stored file: hashed as it passes, and handed to `check` (the structural check's input) on the same
 * pass. A check that stopped reading early (a bad archive) is drained, so the hash still covers every byte: a
 * checksum mismatch is the verdict that names the cause, ahead of whatever the damaged bytes did to the check.
 */
async function hashFile (storage: Storage, f: ListedFile, check: Writable | undefined, signal?: AbortSignal): Promise<string | undefined> {
  const hasher = new Hasher()
  try {
    await pipeline(await storage.read(f.path), hasher, check ?? discard(), { signal })
  } catch (err) {
    cancelledIf(signal)
    if ((err as PgkeepError)?.code?.startsWith?.('STORAGE_')) throw err
    return `read failed: ${f.path}: ${(err as Error).message}`
  }
  return hasher.hash.digest('hex') !== f.sha256 ? `sha256 mismatch in ${f.path}` : undefined
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

/** A structural check of a single-file backup: where its stored bytes go, and what it finds. */
interface FileCheck { sink: Writable, verdict: Promise<CheckOutcome>, stop: () => void }

/**
 * The structural check of a single-file backup, fed the stored bytes by hashFile. Decoders that are all children
 * (zstd, age) pass their output to pg_restore over kernel pipes (piped-check.ts; bench/validate.ts): node only
 * writes the stored bytes. gzip and plain SQL keep the pipeline through node (its codec, the 8 KiB it keeps).
 */
async function startFileCheck (backup: Backup, storage: Storage, f: ListedFile, opts: ValidateOptions): Promise<FileCheck> {
  const identityFile = backup.encryption ? opts.identityFile : undefined
  const format = backup.format as 'custom' | 'plain' | 'tar'
  const children = format === 'plain' ? undefined : await childDecoders(backup.compression, identityFile)
  // the caller's cancel, or its own verdict known first (a checksum mismatch): either ends the check
  const stopped = new AbortController()
  const signal = opts.signal ? AbortSignal.any([opts.signal, stopped.signal]) : stopped.signal
  const stop = (): void => stopped.abort()
  if (format !== 'plain' && children !== undefined) {
    const pgRestore = await findPgTool('pg_restore', opts.pgBinDir)
    const check = pipedPgRestoreCheck(pgRestore.path, format, children, { signal, eofGraceMs: opts.eofGraceMs ?? EOF_GRACE_MS })
    const verdict = check.verdict.then(async outcome => {
      // the decoded bytes never passed through node: a wrong file type is told from the head, read again
      if (outcome.ok || outcome.failedStage === 'age' || f.sizeBytes === 0) return outcome
      const head = { source: await storage.read(f.path, { start: 0, end: Math.min(f.sizeBytes, HEAD_BYTES) - 1 }), decoders: await createDecoders(backup.compression, identityFile) }
      return { ok: false, message: await sniffHead(head, format) ?? outcome.message }
    })
    verdict.catch(() => {}) // awaited once the read is done; it may fail before (a decoder that cannot start)
    return { sink: check.sink, verdict, stop }
  }
  const source = new PassThrough({ highWaterMark: 4 * 1024 * 1024 })
  const input = { source, decoders: await createDecoders(backup.compression, identityFile) }
  const verdict = format === 'plain'
    ? checkPlainFile(input, signal)
    : runPgRestoreCheck((await findPgTool('pg_restore', opts.pgBinDir)).path, ['-f', '/dev/null', '-F', format === 'custom' ? 'c' : 't'], { ...input, sniff: format }, signal, opts.eofGraceMs)
  verdict.catch(() => {})
  return { sink: feedChild(source, { drainAfterClose: true }), verdict, stop }
}

/** Enough stored bytes for the first decoded 512 whatever the codec (a zstd block, an age chunk). */
const HEAD_BYTES = 1024 * 1024

async function directoryCheck (backup: Backup, storage: Storage, opts: ValidateOptions): Promise<CheckOutcome> {
  const dir = storage.localPath?.(backup.name)
  if (dir === undefined) return { ok: false, message: `a directory-format backup cannot be read from ${storage.url}` }
  const pgRestore = await findPgTool('pg_restore', opts.pgBinDir)
  // pg_dump compresses a directory's data files itself; pg_restore reads them as they are
  return await runPgRestoreCheck(pgRestore.path, ['-f', '/dev/null', '-F', 'd', dir], undefined, opts.signal)
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
    const problem = await checkSize(storage, f)
    if (problem) return fail(problem)
  }
  // the registry's checksum must describe the same bytes as the manifest's, or one of them was swapped
  const expected = backup.format === 'directory' ? [digestOfFiles(files)] : [files.find(f => f.path === backup.name)?.sha256]
  const swapped = backup.sha256 !== undefined && !expected.includes(backup.sha256.toLowerCase())
    ? `sha256 of ${backup.name} in the manifest differs from the registry record`
    : undefined

  if (backup.format !== 'directory') {
    // one read: the checksum and the structural check side by side, the checksum's verdict first
    const file = files.find(f => f.path === backup.name)!
    const check = checksumOnly ? undefined : await startFileCheck(backup, storage, file, opts)
    const problem = await hashFile(storage, file, check?.sink, opts.signal)
    cancelledIf(opts.signal)
    // bytes that do not match their checksum are the verdict, whatever they did to the check (or to a key check)
    if (problem) {
      // not waited for: a pg_restore stopped in the middle of a damaged archive is all that is left of it
      check?.stop()
      return fail(problem)
    }
    const outcome = await check?.verdict
    cancelledIf(opts.signal)
    if (swapped) return fail(swapped)
    if (outcome === undefined) return { ok: true, method }
    return outcome.ok ? { ok: true, method } : fail(outcome.message ?? 'structural check failed')
  }

  for (const f of files) {
    const problem = await hashFile(storage, f, undefined, opts.signal)
    cancelledIf(opts.signal)
    if (problem) return fail(problem)
  }
  if (swapped) return fail(swapped)
  const localRoot = storage.localPath?.('.')
  if (localRoot !== undefined) {
    const extra = await unlistedFiles(localRoot, backup.name, new Set(files.map(f => f.path)))
    if (extra.length > 0) return fail(`file not in the manifest: ${extra.slice(0, 3).join(', ')}`)
  }
  if (checksumOnly) return { ok: true, method }
  const outcome = await directoryCheck(backup, storage, opts)
  cancelledIf(opts.signal)
  return outcome.ok ? { ok: true, method } : fail(outcome.message ?? 'structural check failed')
}

import { createHash, type Hash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { link, lstat, open, readdir, rename, rm, unlink } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Compression } from '../../../schemas/backup.ts'
import { createCompressor, type CodecStage } from '../pg/codec.ts'
import { PgkeepError, toPgkeepError } from '../../errors.ts'
import { digestOfFiles } from '../store/manifest.ts'

export interface PipelineResult {
  /** bytes pg_dump produced */
  rawBytes: number
  /** bytes written to the partial file */
  sizeBytes: number
  sha256: string
}

/** Counts and hashes what flows through without holding on to it. */
class Meter extends Transform {
  bytes = 0
  private readonly hash?: Hash

  constructor (opts: { hash: boolean, onBytes?: (total: number) => void }) {
    super({ highWaterMark: 1024 * 1024 })
    if (opts.hash) this.hash = createHash('sha256')
    this.onBytes = opts.onBytes
  }

  private readonly onBytes?: (total: number) => void

  override _transform (chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length
    this.hash?.update(chunk)
    this.onBytes?.(this.bytes)
    done(null, chunk)
  }

  digest (): string | undefined { return this.hash?.digest('hex') }
}

async function fsyncPath (path: string, flags = 'r'): Promise<void> {
  const fh = await open(path, flags)
  try { await fh.sync() } finally { await fh.close() }
}

function isAbort (err: unknown): boolean {
  return (err as Error)?.name === 'AbortError'
}

const PIPE_ERRORS = new Set(['EPIPE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_PREMATURE_CLOSE'])
// a compressor that closed its input is exiting: this only bounds a wait that should be a few milliseconds
const COMPRESSOR_EXIT_WAIT_MS = 5000

/**
 * Writing into a compressor child that has died fails with a bare "write EPIPE", which says nothing: what
 * the user needs is which process died and how (killed by a signal, or its own error message).
 */
async function compressorDeath (compressor: CodecStage, err: unknown): Promise<PgkeepError | undefined> {
  if (!compressor.failure || !PIPE_ERRORS.has((err as NodeJS.ErrnoException)?.code ?? '')) return undefined
  let timer: NodeJS.Timeout | undefined
  const gaveUp = new Promise<undefined>(resolve => { timer = setTimeout(() => resolve(undefined), COMPRESSOR_EXIT_WAIT_MS) })
  try {
    return await Promise.race([compressor.failure(), gaveUp])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * source -> raw meter -> compressor -> stored meter -> <partialPath>, as one stream.pipeline, so
 * backpressure keeps memory flat whatever the dump size. Resolves once the file is fsynced. On
 * failure the partial is left for the caller, who owns both the rename and the clean-up.
 */
export async function runDumpPipeline (opts: {
  source: Readable
  compression: Compression
  level: number
  partialPath: string
  onBytes?: (rawBytes: number) => void
  signal?: AbortSignal
}): Promise<PipelineResult> {
  const { source, compression, level, partialPath, signal } = opts
  signal?.throwIfAborted()
  const compressor = await createCompressor(compression, level)
  // only the stored bytes are hashed: the record keeps the stored file's checksum, and every hash costs CPU zstd wants
  const raw = new Meter({ hash: false, onBytes: opts.onBytes })
  const stored = new Meter({ hash: true })
  // 'wx': a leftover file with this name is a bug somewhere else, never something to overwrite
  const out = createWriteStream(partialPath, { flags: 'wx', mode: 0o640 })
  try {
    await pipeline(source, raw, compressor.stream, stored, out, signal ? { signal } : {})
    await fsyncPath(partialPath)
  } catch (err) {
    const died = isAbort(err) ? undefined : await compressorDeath(compressor, err)
    compressor.kill('SIGKILL')
    if (isAbort(err)) throw err
    if (died) throw died
    const e = err as NodeJS.ErrnoException
    if (e?.code === 'EEXIST') throw new PgkeepError('CONFLICT', `${partialPath} already exists`, { cause: err })
    throw toPgkeepError(err)
  }
  return { rawBytes: raw.bytes, sizeBytes: stored.bytes, sha256: stored.digest() as string }
}

async function exists (path: string): Promise<boolean> {
  try { await lstat(path); return true } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

/**
 * Renames the finished partial into place and makes the rename durable. A file goes through
 * link + unlink because link fails atomically when the name is taken (rename would replace it);
 * a directory can only be checked first, so two racing jobs with one name are left to the caller.
 */
export async function commitPartial (partialPath: string, finalPath: string): Promise<void> {
  const conflict = (): PgkeepError => new PgkeepError('CONFLICT', `a backup named ${finalPath.split(sep).at(-1)} already exists`)
  try {
    const st = await lstat(partialPath)
    if (st.isDirectory()) {
      if (await exists(finalPath)) throw conflict()
      await rename(partialPath, finalPath)
    } else {
      try {
        await link(partialPath, finalPath)
        await unlink(partialPath)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EEXIST') throw conflict()
        // filesystems without hard links (some FUSE/SMB mounts): check, then rename
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err
        if (await exists(finalPath)) throw conflict()
        await rename(partialPath, finalPath)
      }
    }
    await fsyncPath(dirname(finalPath))
    if (dirname(partialPath) !== dirname(finalPath)) await fsyncPath(dirname(partialPath))
  } catch (err) {
    throw toPgkeepError(err)
  }
}

export async function removePartial (partialPath: string): Promise<void> {
  await rm(partialPath, { recursive: true, force: true })
}

export interface DirectoryHash {
  /** paths relative to the directory's parent, '/'-separated: '<name>/toc.dat' */
  files: { path: string, sizeBytes: number, sha256: string }[]
  sizeBytes: number
  /** sha256 of the lines `${sha256}  ${path}\n`, in path order */
  sha256: string
}

async function listFiles (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...await listFiles(p))
    else if (entry.isFile()) out.push(p)
  }
  return out
}

async function hashAndSyncFile (path: string): Promise<{ sizeBytes: number, sha256: string }> {
  const fh = await open(path, 'r')
  try {
    const hash = createHash('sha256')
    let sizeBytes = 0
    for await (const chunk of fh.createReadStream({ autoClose: false, highWaterMark: 1024 * 1024 })) {
      hash.update(chunk as Buffer)
      sizeBytes += (chunk as Buffer).length
    }
    await fh.sync()
    return { sizeBytes, sha256: hash.digest('hex') }
  } finally {
    await fh.close()
  }
}

/** Hashes a directory-format dump file by file (also making every file and the directory durable). */
export async function hashDirectory (dir: string): Promise<DirectoryHash> {
  try {
    const parent = dirname(dir)
    const paths = (await listFiles(dir)).map(p => ({ abs: p, rel: relative(parent, p).split(sep).join('/') }))
    // byte-order sort, not locale: the checksum must not depend on the machine's locale
    paths.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))
    const files: DirectoryHash['files'] = []
    for (const p of paths) files.push({ path: p.rel, ...await hashAndSyncFile(p.abs) })
    await fsyncPath(dir)
    const sha256 = digestOfFiles(files)
    return { files, sizeBytes: files.reduce((n, f) => n + f.sizeBytes, 0), sha256 }
  } catch (err) {
    throw toPgkeepError(err)
  }
}

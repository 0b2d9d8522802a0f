import { createHash, type Hash } from 'node:crypto'
import { open, readdir, rm } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream'
import { finished, pipeline } from 'node:stream/promises'
import type { Compression } from '../../../schemas/backup.ts'
import { createCompressor, type CodecStage } from '../pg/codec.ts'
import { firstStageFailure } from '../pg/backup-codec.ts'
import { PgkeepError, toPgkeepError } from '../../errors.ts'
import { digestOfFiles } from '../store/manifest.ts'

export interface PipelineResult {
  /** bytes pg_dump produced */
  rawBytes: number
  /** bytes written to each output (after compression and encryption) */
  sizeBytes: number
  sha256: string
  /** outputs after the first that failed on the way (the first one failing fails the pipeline), by index */
  failedOutputs: Map<number, PgkeepError>
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

/**
 * Passes every chunk on and writes it to `tap` as well, taking the next once the tap accepted it (verify: inline
 * on a raw stream that flows through node). Ends the tap when the stream ends.
 */
class Tee extends Transform {
  constructor (private readonly tap: Writable) {
    super({ highWaterMark: 1024 * 1024 })
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.tap.write(chunk)) { done(null, chunk); return }
    this.tap.once('drain', () => done(null, chunk))
  }

  override _flush (done: TransformCallback): void {
    this.tap.end(() => done())
  }

  // a dump stopped half-way (cancel, failure) must close the tap too: its reader (the inline check on a FIFO)
  // would otherwise wait for the rest of the stream for good, and a read blocked on a FIFO keeps the process alive
  override _destroy (err: Error | null, done: (err: Error | null) => void): void {
    if (!this.tap.writableFinished) {
      // the pipeline reports why the dump stopped; the tap's own echo of it is not a second failure
      this.tap.on('error', () => {})
      this.tap.destroy(err ?? new Error('the dump stopped before its end'))
    }
    done(err)
  }
}

function isAbort (err: unknown): boolean {
  return (err as Error)?.name === 'AbortError'
}

const PIPE_ERRORS = new Set(['EPIPE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_PREMATURE_CLOSE'])

/** A bare "write EPIPE" says nothing: the cause is the codec child (zstd, age) that died, by name and how. */
async function childDeath (stages: CodecStage[], err: unknown): Promise<PgkeepError | undefined> {
  if (!PIPE_ERRORS.has((err as NodeJS.ErrnoException)?.code ?? '')) return undefined
  return await firstStageFailure(stages)
}

/**
 * One stream into several outputs (the primary store and its copies): each chunk goes to every output still
 * alive and the next is taken once all of them accepted it, so the slowest sets the pace and memory stays flat.
 * The first output failing fails the whole write; a copy failing is dropped and remembered, the rest go on.
 */
class FanOut extends Writable {
  readonly failed = new Map<number, PgkeepError>()
  private readonly live: Map<number, Writable>

  constructor (outputs: Writable[]) {
    super({ highWaterMark: 1024 * 1024 })
    this.live = new Map(outputs.map((o, i) => [i, o]))
    for (const [i, o] of this.live) {
      o.on('error', err => {
        if (i === 0) { this.destroy(err); return }
        this.drop(i, err)
      })
    }
  }

  private drop (i: number, err: unknown): void {
    if (!this.live.delete(i)) return
    this.failed.set(i, toPgkeepError(err))
    this.emit('dropped')
  }

  private async eachLive (act: (o: Writable) => Promise<void>): Promise<void> {
    await Promise.all([...this.live].map(async ([i, o]) => {
      try { await act(o) } catch (err) { if (i === 0) throw err; this.drop(i, err) }
    }))
  }

  override _write (chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.eachLive(async o => { if (!o.write(chunk)) await waitFor(o, 'drain') }).then(() => done(), done)
  }

  override _final (done: (err?: Error | null) => void): void {
    this.eachLive(async o => { o.end(); await finished(o) }).then(() => done(), done)
  }

  override _destroy (err: Error | null, done: (err?: Error | null) => void): void {
    for (const o of this.live.values()) o.destroy(err ?? undefined)
    done(err)
  }
}

/** Resolves on `event`, rejects if the stream fails or closes first (a dropped copy must not stall the others). */
function waitFor (stream: Writable, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => { stream.off(event, onEvent); stream.off('error', onError); stream.off('close', onClose) }
    const onEvent = (): void => { cleanup(); resolve() }
    const onError = (err: Error): void => { cleanup(); reject(err) }
    const onClose = (): void => { cleanup(); reject(Object.assign(new Error('output closed'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })) }
    stream.on(event, onEvent)
    stream.once('error', onError)
    stream.once('close', onClose)
  })
}

/**
 * source -> raw meter -> compressor -> [age] -> stored meter -> outputs, as one stream.pipeline, so backpressure
 * keeps memory flat whatever the dump size. Resolves once every output has taken every byte (publishing them,
 * fsync included, is the caller's `commit`). On failure the outputs are left for the caller to abort.
 */
export async function runDumpPipeline (opts: {
  source: Readable
  compression: Compression
  level: number
  /** the stages from pg_dump's bytes to the stored ones (compress, encrypt); default: the compressor alone */
  encoders?: CodecStage[]
  /** the primary output first, then the copies */
  outputs: Writable[]
  onBytes?: (rawBytes: number) => void
  /** verify: inline, when the raw bytes pass through node: they are copied here too */
  rawTap?: Writable
  /** false when `source` is already encoded (pg_dump | zstd in the kernel): rawBytes is then 0, the caller knows it */
  countRaw?: boolean
  signal?: AbortSignal
}): Promise<PipelineResult> {
  const { source, compression, level, signal } = opts
  signal?.throwIfAborted()
  const codecs = opts.encoders ?? [await createCompressor(compression, level)]
  // only the stored bytes are hashed: the record keeps the stored file's checksum, and every hash costs CPU zstd wants
  const raw = opts.countRaw === false ? undefined : new Meter({ hash: false, onBytes: opts.onBytes })
  const stored = new Meter({ hash: true })
  const fanOut = opts.outputs.length === 1 ? undefined : new FanOut(opts.outputs)
  const sink = fanOut ?? opts.outputs[0]
  const before = [raw, opts.rawTap ? new Tee(opts.rawTap) : undefined].filter(s => s !== undefined)
  try {
    await (pipeline as (...s: unknown[]) => Promise<void>)(source, ...before, ...codecs.map(c => c.stream), stored, sink, signal ? { signal } : {})
  } catch (err) {
    const died = isAbort(err) ? undefined : await childDeath(codecs, err)
    for (const c of codecs) c.kill('SIGKILL')
    if (isAbort(err)) throw err
    if (died) throw died
    throw toPgkeepError(err)
  }
  return { rawBytes: raw?.bytes ?? 0, sizeBytes: stored.bytes, sha256: stored.digest() as string, failedOutputs: fanOut?.failed ?? new Map() }
}

async function fsyncPath (path: string): Promise<void> {
  const fh = await open(path, 'r')
  try { await fh.sync() } finally { await fh.close() }
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

import { createHash } from 'node:crypto'
import { open, type FileHandle } from 'node:fs/promises'
import { PgkeepError, toPgkeepError } from '../../errors.ts'

const TAIL_CHUNK = 4 * 1024 * 1024
const TAIL_WAIT_MS = 100
/**
 * How much of the file may sit unflushed in the page cache while it lands. The commit's fsync then finds at most
 * this much left to write, instead of the whole file: on this machine's disk that is ~0.25 s less at the end of a
 * 500 MB backup, for no CPU (bench/dump-integrity.ts, docs/verification.md).
 */
export const FLUSH_EVERY_BYTES = 64 * 1024 * 1024

export interface LandedFile {
  sizeBytes: number
  sha256: string
  /** bytes already made durable (fdatasync) while the file landed; the commit's fsync covers the rest */
  flushedBytes: number
}

/**
 * Flushes a landing file in the background, at most one flush in flight. A failed flush is kept and thrown by
 * `check()`/`settle()`: the kernel reports a writeback error to one fsync only, so swallowing it here could let
 * the commit's fsync succeed over lost pages.
 */
class WriteBehind {
  flushedBytes = 0
  private pending?: Promise<void>
  private failure?: unknown

  constructor (private readonly fh: FileHandle, private readonly everyBytes: number) {}

  /** `landed` bytes are in the page cache: start a flush of them if enough piled up and none is running */
  offer (landed: number): void {
    this.check()
    if (this.pending !== undefined || landed - this.flushedBytes < this.everyBytes) return
    this.pending = this.fh.datasync().then(
      () => { this.flushedBytes = Math.max(this.flushedBytes, landed) },
      (err: unknown) => { this.failure ??= err },
    ).finally(() => { this.pending = undefined })
  }

  check (): void {
    if (this.failure === undefined) return
    const e = toPgkeepError(this.failure)
    // ENOSPC/EDQUOT keep their DISK_FULL (delayed allocation reports a full disk at the flush); the rest say where
    throw e.code !== 'INTERNAL' ? e : new PgkeepError('INTERNAL', `flushing the backup file to disk failed: ${e.message}`, { cause: this.failure })
  }

  /** waits for the flush in flight (the handle must not close under it) and throws if any failed */
  async settle (): Promise<void> {
    await this.pending
    this.check()
  }
}

/**
 * The sha256 and size of a file another process is writing (zstd writing the backup itself), read back as it
 * lands through one reused buffer: no chunk of it is held in node, and the page cache serves the read. Reads
 * until `writerDone` settles, then to the end. Every `flushEveryBytes` read it also starts an fdatasync, so the
 * disk writes the file while the CPUs are still dumping; a failed flush fails the read.
 */
export async function hashLandingFile (path: string, writerDone: Promise<unknown>, opts: { signal?: AbortSignal, flushEveryBytes?: number } = {}): Promise<LandedFile> {
  const { signal, flushEveryBytes = FLUSH_EVERY_BYTES } = opts
  let finished = false
  const settled = writerDone.then(() => { finished = true }, () => { finished = true })
  const fh = await open(path, 'r')
  const flusher = new WriteBehind(fh, flushEveryBytes)
  const hash = createHash('sha256')
  const buf = Buffer.allocUnsafe(TAIL_CHUNK)
  let pos = 0
  try {
    for (;;) {
      signal?.throwIfAborted()
      const wasFinished = finished
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
      if (bytesRead > 0) {
        hash.update(buf.subarray(0, bytesRead))
        pos += bytesRead
        flusher.offer(pos)
        continue
      }
      if (wasFinished) break
      let timer: NodeJS.Timeout | undefined
      await Promise.race([settled, new Promise(resolve => { timer = setTimeout(resolve, TAIL_WAIT_MS) })])
      clearTimeout(timer)
    }
    await flusher.settle()
  } finally {
    // a read that failed or was cancelled still waits for its flush before closing the handle under it
    await flusher.settle().catch(() => {})
    await fh.close()
  }
  return { sizeBytes: pos, sha256: hash.digest('hex'), flushedBytes: flusher.flushedBytes }
}

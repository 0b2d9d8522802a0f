import type { FileHandle } from 'node:fs/promises'
import type { Readable, Writable } from 'node:stream'

/**
 * Where backups live: a local directory or an S3-compatible bucket, behind one interface. Keys are plain
 * names relative to the storage's root (a backup's data `<name>`, its manifest `<name>.manifest.json`, a
 * directory-format backup's files `<name>/toc.dat`); an implementation maps them to paths or object keys.
 * Every method throws PgkeepError: NOT_FOUND for a missing key where a key must exist, and for a store that
 * cannot be used STORAGE_AUTH_FAILED (credentials refused), STORAGE_NOT_FOUND (no such bucket or directory)
 * or STORAGE_UNAVAILABLE (network or 5xx after bounded retries).
 */
export interface Storage {
  /** `file:///abs/dir` or `s3://bucket/prefix`: what records, logs and replies name; never credentials */
  readonly url: string
  readonly kind: 'local' | 's3'

  /**
   * Starts writing `key`. Nothing is visible under `key` until `commit` succeeds; until then the write is
   * "unfinished" (a local `.partial` file, an S3 multipart upload) and `listUnfinished` finds it after a crash.
   */
  createWriter (key: string, opts?: { signal?: AbortSignal }): Promise<ObjectWriter>

  /** The bytes of `key`, or of the inclusive range [start, end]; NOT_FOUND if there is no such object. */
  read (key: string, range?: ByteRange): Promise<Readable>

  /** undefined when there is no such object (or, locally, directory) */
  stat (key: string): Promise<ObjectInfo | undefined>

  /** Objects whose key starts with `prefix` (all, without one), in key order; hidden state (`.pgkeep/`) excluded. */
  list (prefix?: string): Promise<ObjectInfo[]>

  /** Removes `key` (locally, a directory with everything in it); a missing key is not an error. */
  delete (key: string): Promise<void>

  /** Small text objects (manifests): replaced atomically, readers see the old text or the new, never a mix. */
  writeText (key: string, text: string): Promise<void>
  /** NOT_FOUND if missing */
  readText (key: string): Promise<string>

  /** Writes that were started and never committed or aborted: what a crash leaves behind. */
  listUnfinished (): Promise<UnfinishedWrite[]>
  /** Drops an unfinished write (its partial file, its multipart upload); one already gone is not an error. */
  abortUnfinished (write: UnfinishedWrite): Promise<void>

  /** Reachable, credentials valid, writable: writes and deletes a probe object under the root. */
  probe (): Promise<void>

  /** The file or directory behind `key`, for tools that must read a path themselves (local storage only). */
  localPath?: (key: string) => string
  /** The file behind `key` opened for reading, for readers that manage their own buffers (local storage only). */
  openLocal?: (key: string) => Promise<FileHandle>
}

export interface ByteRange {
  start: number
  /** inclusive, as in an HTTP Range header */
  end: number
}

export interface ObjectInfo {
  key: string
  sizeBytes: number
  isDirectory?: boolean
}

export interface UnfinishedWrite {
  key: string
  /** the multipart upload id (S3); absent for a local partial file */
  uploadId?: string
}

export interface ObjectWriter {
  /** Where the bytes go. Ending it does not publish them: `commit` does. */
  readonly stream: Writable
  /**
   * Publishes the object once `stream` has finished, after checking the stored size equals `sizeBytes`
   * (INTEGRITY_FAILED otherwise, and the write is dropped). CONFLICT if `key` already exists.
   */
  commit (expected: { sizeBytes: number }): Promise<void>
  /** Drops whatever was written. Safe to call more than once and after a failed commit. */
  abort (): Promise<void>
  /**
   * Local files only: the open file behind `stream` and its path, for a child process (zstd) to write into itself
   * while node reads back what landed. `stream` is then ended unused; `commit` checks and publishes as ever.
   */
  readonly direct?: { fd: number, path: string }
}

export const MANIFEST_SUFFIX = '.manifest.json'

export function manifestKey (backupName: string): string {
  return `${backupName}${MANIFEST_SUFFIX}`
}

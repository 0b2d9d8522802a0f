import type { Readable } from 'node:stream'
import { PgkeepError } from '../../errors.ts'
import { DEFAULT_PART_BYTES, MEMORY_BUDGET_BYTES } from './s3-part-sizes.ts'
import type { S3Storage, S3StorageOptions } from './s3-storage.ts'
import type { ByteRange, ObjectInfo, ObjectWriter, Storage, UnfinishedWrite } from './storage.ts'
import { s3Url } from './storage-url.ts'

/**
 * An S3 store that loads the AWS SDK on first use. The SDK is a third of a second and tens of MB to load: a
 * `pgkeep create` into the local directory must not pay for it just because the opener can open buckets.
 * What the configuration says (its url, the part size) is checked at once, as S3Storage itself would.
 */
export class LazyS3Storage implements Storage {
  readonly kind = 's3' as const
  readonly url: string
  #opened?: Promise<S3Storage>

  constructor (private readonly opts: S3StorageOptions) {
    this.url = s3Url(opts.bucket, (opts.prefix ?? '').replace(/^\/+|\/+$/g, ''))
    const part = opts.firstPartBytes ?? DEFAULT_PART_BYTES
    if (part < 1 || part > MEMORY_BUDGET_BYTES) throw new PgkeepError('CONFIG_INVALID', `${this.url}: the part size must be between 1 byte and ${MEMORY_BUDGET_BYTES} bytes`)
  }

  /** The real store, created once. */
  async open (): Promise<S3Storage> {
    this.#opened ??= import('./s3-storage.ts').then(m => new m.S3Storage(this.opts))
    return await this.#opened
  }

  async createWriter (key: string, opts?: { signal?: AbortSignal }): Promise<ObjectWriter> { return await (await this.open()).createWriter(key, opts) }
  async read (key: string, range?: ByteRange): Promise<Readable> { return await (await this.open()).read(key, range) }
  async stat (key: string): Promise<ObjectInfo | undefined> { return await (await this.open()).stat(key) }
  async list (prefix?: string): Promise<ObjectInfo[]> { return await (await this.open()).list(prefix) }
  async delete (key: string): Promise<void> { await (await this.open()).delete(key) }
  async writeText (key: string, text: string): Promise<void> { await (await this.open()).writeText(key, text) }
  async readText (key: string): Promise<string> { return await (await this.open()).readText(key) }
  async listUnfinished (): Promise<UnfinishedWrite[]> { return await (await this.open()).listUnfinished() }
  async abortUnfinished (write: UnfinishedWrite): Promise<void> { await (await this.open()).abortUnfinished(write) }
  async probe (): Promise<void> { await (await this.open()).probe() }

  /** Closes the client's sockets, if the SDK was ever loaded. */
  close (): void {
    this.#opened?.then(s => s.close(), () => {})
  }
}

import type { Readable } from 'node:stream'
import type { ByteRange, ObjectInfo, ObjectWriter, Storage, UnfinishedWrite } from './storage.ts'

/**
 * A Storage whose implementation is loaded on its first use. The S3 one pulls in the AWS SDK (~0.1 s of start-up
 * and tens of MB), which `pgkeep list` on a bucket-less install, `--help` and every local-only command should
 * never pay for.
 */
export class LazyStorage implements Storage {
  readonly url: string
  readonly kind: Storage['kind']
  readonly #load: () => Promise<Storage>
  #loading?: Promise<Storage>

  constructor (url: string, kind: Storage['kind'], load: () => Promise<Storage>) {
    this.url = url
    this.kind = kind
    this.#load = load
  }

  async #storage (): Promise<Storage> {
    this.#loading ??= this.#load()
    return await this.#loading
  }

  async createWriter (key: string, opts?: { signal?: AbortSignal }): Promise<ObjectWriter> { return await (await this.#storage()).createWriter(key, opts) }
  async read (key: string, range?: ByteRange): Promise<Readable> { return await (await this.#storage()).read(key, range) }
  async stat (key: string): Promise<ObjectInfo | undefined> { return await (await this.#storage()).stat(key) }
  async list (prefix?: string): Promise<ObjectInfo[]> { return await (await this.#storage()).list(prefix) }
  async delete (key: string): Promise<void> { await (await this.#storage()).delete(key) }
  async writeText (key: string, text: string): Promise<void> { await (await this.#storage()).writeText(key, text) }
  async readText (key: string): Promise<string> { return await (await this.#storage()).readText(key) }
  async listUnfinished (): Promise<UnfinishedWrite[]> { return await (await this.#storage()).listUnfinished() }
  async abortUnfinished (write: UnfinishedWrite): Promise<void> { await (await this.#storage()).abortUnfinished(write) }
  async probe (): Promise<void> { await (await this.#storage()).probe() }
}

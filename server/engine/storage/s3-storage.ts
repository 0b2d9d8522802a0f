import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import {
  AbortMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand,
  ListObjectsV2Command, PutObjectCommand, type S3Client,
} from '@aws-sdk/client-s3'
import { NotFoundError, PgkeepError } from '../../errors.ts'
import { DEFAULT_RETRY, type RetryPolicy } from '../retry.ts'
import { createS3Client } from './s3-client.ts'
import { hasS3Code, httpStatusOf, isS3NotFound, toStorageError } from './s3-errors.ts'
import { DEFAULT_PART_BYTES, MEMORY_BUDGET_BYTES, S3MultipartWriter } from './s3-multipart-writer.ts'
import { resumableRead, type OpenedRange } from './s3-object-reader.ts'
import { UploadJournal } from './s3-upload-journal.ts'
import type { ByteRange, ObjectInfo, ObjectWriter, Storage, UnfinishedWrite } from './storage.ts'
import { s3Url } from './storage-url.ts'

export { parseStorageUrl } from './storage-url.ts'
export { createS3Client } from './s3-client.ts'

/**
 * Our own state beside the backups (`<prefix>/.pgkeep/...`, probes) is never listed as a backup; like the local
 * directory, which hides every dot-name, no key starting with a dot is.
 */
const HIDDEN = /^\./

export interface S3StorageOptions {
  bucket: string
  /** without leading or trailing slash; '' = the bucket's root */
  prefix?: string
  forcePathStyle?: boolean
  /** where upload ids are journaled: `<backupDir>/.pgkeep/uploads/` */
  stateDir: string
  /** a client to use instead of createS3Client's (tests) */
  client?: S3Client
  /** retries of one failed part, and of a read whose connection broke off, on top of the SDK's own */
  partRetry?: RetryPolicy
  /** size of the first parts; later parts grow (s3-multipart-writer.ts). Real stores want at least 5 MiB. */
  firstPartBytes?: number
  /** false: every part `firstPartBytes` (stores that want equal parts, like R2); default true */
  partGrowth?: boolean
}

/** An S3-compatible bucket (and prefix) as a Storage: key `k` is the object `<prefix>/k`. */
export class S3Storage implements Storage {
  readonly kind = 's3' as const
  readonly url: string
  readonly bucket: string
  readonly prefix: string
  private readonly client: S3Client
  private readonly journal: UploadJournal
  private readonly partRetry: RetryPolicy
  private readonly firstPartBytes: number
  private readonly partGrowth: boolean

  constructor (opts: S3StorageOptions) {
    this.bucket = opts.bucket
    this.prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '')
    this.url = s3Url(this.bucket, this.prefix)
    this.client = opts.client ?? createS3Client({ forcePathStyle: opts.forcePathStyle })
    this.journal = new UploadJournal(opts.stateDir)
    this.partRetry = opts.partRetry ?? DEFAULT_RETRY
    this.firstPartBytes = opts.firstPartBytes ?? DEFAULT_PART_BYTES
    this.partGrowth = opts.partGrowth ?? true
    // a part buffer larger than the budget would break the memory bound the writer promises
    if (this.firstPartBytes < 1 || this.firstPartBytes > MEMORY_BUDGET_BYTES) throw new PgkeepError('CONFIG_INVALID', `${this.url}: the part size must be between 1 byte and ${MEMORY_BUDGET_BYTES} bytes`)
  }

  private objectKey (key: string): string {
    if (key === '' || key.startsWith('/') || key.split('/').some(s => s === '..' || s === '.' || s === '')) {
      throw new PgkeepError('INTEGRITY_FAILED', `not a key inside ${this.url}: ${key}`)
    }
    return this.prefix === '' ? key : `${this.prefix}/${key}`
  }

  private relative (objectKey: string): string {
    return this.prefix === '' ? objectKey : objectKey.slice(this.prefix.length + 1)
  }

  private listPrefix (sub: string): string {
    return this.prefix === '' ? sub : `${this.prefix}/${sub}`
  }

  private fail (err: unknown, doing: string): PgkeepError {
    return toStorageError(err, this.url, doing)
  }

  async createWriter (key: string, opts: { signal?: AbortSignal } = {}): Promise<ObjectWriter> {
    if (opts.signal?.aborted) throw new PgkeepError('CANCELLED', `writing ${key} to ${this.url} was cancelled`)
    return new S3MultipartWriter({
      client: this.client,
      bucket: this.bucket,
      objectKey: this.objectKey(key),
      key,
      url: this.url,
      journal: this.journal,
      partRetry: this.partRetry,
      firstPartBytes: this.firstPartBytes,
      partGrowth: this.partGrowth,
      signal: opts.signal,
    })
  }

  /** A read that resumes where a dropped connection left it (s3-object-reader.ts). */
  async read (key: string, range?: ByteRange): Promise<Readable> {
    return await resumableRead({
      open: (start, end, etag) => this.openRange(key, start, end, etag),
      start: range?.start ?? 0,
      end: range?.end,
      retry: this.partRetry,
      what: `${this.url}: reading ${key}`,
    })
  }

  private async openRange (key: string, start: number, end: number | undefined, etag?: string): Promise<OpenedRange> {
    const whole = start === 0 && end === undefined
    let reply
    try {
      reply = await this.client.send(new GetObjectCommand({
        Bucket: this.bucket, Key: this.objectKey(key), IfMatch: etag, ...(whole ? {} : { Range: `bytes=${start}-${end ?? ''}` }),
      }))
    } catch (err) {
      if (isS3NotFound(err)) throw new NotFoundError(`${key} in ${this.url}`)
      if (hasS3Code(err, 'PreconditionFailed') || httpStatusOf(err) === 412) throw new PgkeepError('INTEGRITY_FAILED', `${key} in ${this.url} was replaced while it was being read`)
      // like reading past the end of a file: nothing
      if (hasS3Code(err, 'InvalidRange') || httpStatusOf(err) === 416) return { body: Readable.from([]), from: start, total: start }
      throw this.fail(err, `reading ${key}`)
    }
    const body = reply.Body as Readable
    const sent = /^bytes (\d+)-\d+\/(\d+)$/.exec(reply.ContentRange ?? '')
    if (sent) return { body, from: Number(sent[1]), total: Number(sent[2]), etag: reply.ETag }
    return { body, from: 0, total: reply.ContentLength ?? 0, etag: reply.ETag }
  }

  async stat (key: string): Promise<ObjectInfo | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }))
      return { key, sizeBytes: head.ContentLength ?? 0 }
    } catch (err) {
      if (isS3NotFound(err)) return undefined
      throw this.fail(err, `checking ${key}`)
    }
  }

  /**
   * Like the local directory, one level: `<name>/...` objects (a directory-format backup) are one entry with
   * isDirectory, found as a common prefix.
   */
  async list (prefix = ''): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = []
    let token: string | undefined
    do {
      let page
      try {
        page = await this.client.send(new ListObjectsV2Command({
          Bucket: this.bucket, Prefix: this.listPrefix(prefix), Delimiter: '/', ContinuationToken: token,
        }))
      } catch (err) { throw this.fail(err, 'listing objects') }
      for (const obj of page.Contents ?? []) {
        const key = this.relative(obj.Key!)
        if (key !== '' && !HIDDEN.test(key)) out.push({ key, sizeBytes: obj.Size ?? 0 })
      }
      for (const dir of page.CommonPrefixes ?? []) {
        const key = this.relative(dir.Prefix!).replace(/\/$/, '')
        if (key !== '' && !HIDDEN.test(key + '/')) out.push({ key, sizeBytes: 0, isDirectory: true })
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    return out.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  }

  /** A key with objects under `<key>/` (directory-format) loses them too, as a local directory would. */
  async delete (key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }))
      let token: string | undefined
      do {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.objectKey(key) + '/', ContinuationToken: token }))
        for (const obj of page.Contents ?? []) await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: obj.Key! }))
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined
      } while (token !== undefined)
    } catch (err) {
      if (isS3NotFound(err)) return
      throw this.fail(err, `deleting ${key}`)
    }
  }

  /** One PutObject: S3 replaces an object atomically, so readers see the old text or the new. */
  async writeText (key: string, text: string): Promise<void> {
    const body = Buffer.from(text, 'utf8')
    try {
      await this.client.send(new PutObjectCommand({
        Bucket: this.bucket, Key: this.objectKey(key), Body: body, ContentLength: body.length,
        ChecksumSHA256: createHash('sha256').update(body).digest('base64'), ContentType: 'text/plain; charset=utf-8',
      }))
    } catch (err) { throw this.fail(err, `writing ${key}`) }
  }

  async readText (key: string): Promise<string> {
    try {
      const reply = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }))
      return await reply.Body!.transformToString('utf8')
    } catch (err) {
      if (isS3NotFound(err)) throw new NotFoundError(`${key} in ${this.url}`)
      throw this.fail(err, `reading ${key}`)
    }
  }

  /** The uploads journaled here for this url, and those the store lists under the prefix (if it can). */
  async listUnfinished (): Promise<UnfinishedWrite[]> {
    const found = new Map<string, UnfinishedWrite>()
    for (const entry of await this.journal.list(this.url)) found.set(entry.uploadId, { key: entry.key, uploadId: entry.uploadId })
    for (const upload of await this.storeUploads(this.prefix === '' ? '' : this.prefix + '/')) {
      const key = this.relative(upload.key)
      if (!HIDDEN.test(key)) found.set(upload.uploadId, { key, uploadId: upload.uploadId })
    }
    return [...found.values()].sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  }

  /** Open multipart uploads under an object-key prefix; a store that cannot list them (s3rver) has none to tell. */
  private async storeUploads (prefix: string): Promise<Array<{ key: string, uploadId: string }>> {
    const out: Array<{ key: string, uploadId: string }> = []
    let keyMarker: string | undefined
    let uploadIdMarker: string | undefined
    for (;;) {
      let page
      try {
        page = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }))
      } catch (err) {
        if (hasS3Code(err, 'NotImplemented') || httpStatusOf(err) === 501) return out
        throw this.fail(err, 'listing unfinished uploads')
      }
      for (const u of page.Uploads ?? []) if (u.Key !== undefined && u.UploadId !== undefined) out.push({ key: u.Key, uploadId: u.UploadId })
      if (page.IsTruncated !== true || (page.NextKeyMarker === undefined && page.NextUploadIdMarker === undefined)) return out
      keyMarker = page.NextKeyMarker
      uploadIdMarker = page.NextUploadIdMarker
    }
  }

  /** Aborts the upload (or, without an id, every open upload of that key) and forgets it; gone already is fine. */
  async abortUnfinished (write: UnfinishedWrite): Promise<void> {
    const journaled = (await this.journal.list(this.url)).filter(e => e.key === write.key && (write.uploadId === undefined || e.uploadId === write.uploadId))
    const ids = new Set(journaled.map(e => e.uploadId))
    if (write.uploadId !== undefined) ids.add(write.uploadId)
    else for (const u of await this.storeUploads(this.objectKey(write.key))) if (u.key === this.objectKey(write.key)) ids.add(u.uploadId)
    for (const uploadId of ids) {
      try {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey(write.key), UploadId: uploadId }))
      } catch (err) {
        if (!hasS3Code(err, 'NoSuchUpload') && !isS3NotFound(err)) throw this.fail(err, `aborting the upload of ${write.key}`)
      }
    }
    for (const entry of journaled) await this.journal.remove(entry.path)
  }

  async probe (): Promise<void> {
    const key = `.pgkeep-probe-${process.pid}-${randomBytes(4).toString('hex')}`
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: 'pgkeep write probe\n' }))
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }))
    } catch (err) {
      throw this.fail(err, 'probing')
    }
  }

  /** Closes the client's sockets (tests, shutdown). */
  close (): void {
    this.client.destroy()
  }
}

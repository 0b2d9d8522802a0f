import { createHash } from 'node:crypto'
import { Writable } from 'node:stream'
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  HeadObjectCommand, PutObjectCommand, UploadPartCommand, type CompletedPart, type S3Client,
} from '@aws-sdk/client-s3'
import { IntegrityError, InvalidStateError, PgkeepError } from '../../errors.ts'
import { backoffDelay, type RetryPolicy } from '../retry.ts'
import { hasS3Code, httpStatusOf, isS3NotFound, isTransientS3Error, toStorageError } from './s3-errors.ts'
import type { UploadJournal } from './s3-upload-journal.ts'
import type { ObjectWriter } from './storage.ts'
import { DEFAULT_PART_BYTES, MEMORY_BUDGET_BYTES } from './s3-part-sizes.ts'

const MiB = 1024 * 1024

// part buffers held at once (the one filling and those on the wire) never exceed MEMORY_BUDGET_BYTES
export { DEFAULT_PART_BYTES, MEMORY_BUDGET_BYTES }
const MAX_PARTS_IN_FLIGHT = 4
const MAX_PARTS = 10_000
/** S3 allows 10,000 parts: parts double in size every 1,000 so a dump is not capped at 10,000 x 8 MiB. */
const PARTS_PER_SIZE_STEP = 1000

/**
 * Size of part `n` (1-based): the first part size, doubled every 1,000 parts, at most the memory budget.
 * With 8 MiB: 1,000 x 8 + 1,000 x 16 + 1,000 x 32 + 7,000 x 64 MiB = 504,000 MiB (about 492 GiB) per object.
 */
export function partSizeFor (n: number, firstPartBytes: number, growth = true): number {
  if (!growth) return firstPartBytes
  return Math.min(MEMORY_BUDGET_BYTES, firstPartBytes * 2 ** Math.floor((n - 1) / PARTS_PER_SIZE_STEP))
}

export function maxObjectBytes (firstPartBytes: number, growth = true): number {
  let total = 0
  for (let n = 1; n <= MAX_PARTS; n++) total += partSizeFor(n, firstPartBytes, growth)
  return total
}

export interface WriterContext {
  client: S3Client
  bucket: string
  /** the object key in the bucket, prefix included */
  objectKey: string
  /** the storage-relative key, as the journal and errors name it */
  key: string
  url: string
  journal: UploadJournal
  partRetry: RetryPolicy
  firstPartBytes: number
  /** false: every part the first size (R2 wants equal parts) */
  partGrowth: boolean
  signal?: AbortSignal
}

const sha256 = (buf: Buffer): string => createHash('sha256').update(buf).digest('base64')

function sleep (ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    const timer = setTimeout(done, ms)
    function done (): void { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
    signal.addEventListener('abort', done, { once: true })
  })
}

/**
 * One object written as a streamed multipart upload with bounded memory: bytes are copied into a part buffer;
 * a full part goes on the wire (up to 4 at once) while the next one fills; a write waits while the buffers held
 * would exceed MEMORY_BUDGET_BYTES, which is the Writable's backpressure. Each part carries its SHA-256 so the
 * store checks it, and a part that fails transiently is sent again (never the whole upload). An object smaller
 * than one part never starts a multipart upload: it is one PutObject at commit, which saves three round trips
 * and leaves nothing to clean up after a crash.
 */
export class S3MultipartWriter implements ObjectWriter {
  readonly stream: Writable
  private readonly ctx: WriterContext
  /** cancels requests in flight: our own abort, a failed part, or the caller's signal */
  private readonly stop = new AbortController()
  private current: Buffer | undefined
  private filled = 0
  private partNumber = 0
  private bytesWritten = 0
  private readonly parts: CompletedPart[] = []
  private readonly inFlight = new Set<Promise<void>>()
  private inFlightBytes = 0
  /** part buffers whose upload finished, reused: no garbage per part, so the bound holds without waiting on GC */
  private readonly spare: Buffer[] = []
  private uploadId: string | undefined
  private creating: Promise<string> | undefined
  private journalPath: string | undefined
  /** the whole object when it fits in one part: sent by commit */
  private single: Buffer | undefined
  private failure: PgkeepError | undefined
  private state: 'writing' | 'committing' | 'committed' | 'aborted' = 'writing'
  private aborting: Promise<void> | undefined
  private readonly detachSignal: () => void

  constructor (ctx: WriterContext) {
    this.ctx = ctx
    this.stream = new Writable({
      highWaterMark: MiB,
      write: (chunk: Buffer, _enc, cb) => { this.accept(chunk).then(() => cb(), cb) },
      final: cb => { this.finishParts().then(() => cb(), cb) },
    })
    const onAbort = (): void => {
      // once committing, the write finishes or fails on its own, like a local rename: no half-aborted commit
      if (this.state !== 'writing') return
      // the stream errors too, so a pipeline feeding it stops instead of waiting on a write that never returns
      this.stream.destroy(this.fail(new PgkeepError('CANCELLED', `writing ${ctx.key} to ${ctx.url} was cancelled`)))
      this.abort().catch(() => {})
    }
    if (ctx.signal?.aborted) onAbort()
    else ctx.signal?.addEventListener('abort', onAbort, { once: true })
    // a long-lived signal (a job's) must not keep every finished writer alive
    this.detachSignal = () => ctx.signal?.removeEventListener('abort', onAbort)
  }


  private fail (err: unknown): PgkeepError {
    this.failure ??= toStorageError(err, this.ctx.url, `uploading ${this.ctx.key}`)
    this.stop.abort()
    return this.failure
  }

  private async accept (chunk: Buffer): Promise<void> {
    let offset = 0
    while (offset < chunk.length) {
      if (this.failure) throw this.failure
      if (!this.current) await this.allocatePart()
      const part = this.current!
      const n = Math.min(chunk.length - offset, part.length - this.filled)
      chunk.copy(part, this.filled, offset, offset + n)
      this.filled += n
      offset += n
      this.bytesWritten += n
      if (this.filled === part.length) this.sendCurrent()
    }
  }

  /** Waits until another part buffer fits in the budget; this wait is what holds back the writer. */
  private async allocatePart (): Promise<void> {
    const size = partSizeFor(this.partNumber + 1, this.ctx.firstPartBytes, this.ctx.partGrowth)
    while (this.inFlight.size > 0 && (this.inFlightBytes + size > MEMORY_BUDGET_BYTES || this.inFlight.size >= MAX_PARTS_IN_FLIGHT)) {
      await Promise.race(this.inFlight)
      if (this.failure) throw this.failure
    }
    if (this.partNumber >= MAX_PARTS) throw new PgkeepError('INVALID_INPUT', `${this.ctx.key} is larger than ${maxObjectBytes(this.ctx.firstPartBytes, this.ctx.partGrowth)} bytes, the most one S3 object can hold with this part size`)
    while (this.spare.length > 0 && this.spare[0].length !== size) this.spare.shift()
    this.current = this.spare.pop() ?? Buffer.allocUnsafeSlow(size)
    this.filled = 0
  }

  private sendCurrent (): void {
    const buffer = this.current!
    const body = this.filled === buffer.length ? buffer : buffer.subarray(0, this.filled)
    this.current = undefined
    this.filled = 0
    const n = ++this.partNumber
    this.inFlightBytes += buffer.length
    const sending: Promise<void> = this.uploadPart(n, body)
      .then(part => { this.parts.push(part) }, err => { this.fail(err) })
      .finally(() => {
        this.inFlight.delete(sending)
        this.inFlightBytes -= buffer.length
        // the SDK is done with the body once the request settled, retries included
        if (!this.stop.signal.aborted) this.spare.push(buffer)
      })
    this.inFlight.add(sending)
  }

  /** The stream ended: a multipart upload sends its last part and waits for all; a small object waits for commit. */
  private async finishParts (): Promise<void> {
    if (this.failure) throw this.failure
    if (this.partNumber === 0) {
      this.single = this.current === undefined ? Buffer.alloc(0) : Buffer.from(this.current.subarray(0, this.filled))
      this.current = undefined
      return
    }
    if (this.filled > 0) this.sendCurrent()
    await Promise.allSettled([...this.inFlight])
    if (this.failure) throw this.failure
  }

  private upload (): Promise<string> {
    this.creating ??= (async () => {
      const { client, bucket, objectKey } = this.ctx
      const created = await client.send(new CreateMultipartUploadCommand({
        Bucket: bucket, Key: objectKey, ChecksumAlgorithm: 'SHA256', ContentType: 'application/octet-stream',
      }), { abortSignal: this.stop.signal })
      const uploadId = created.UploadId
      if (uploadId === undefined) throw new PgkeepError('STORAGE_UNAVAILABLE', `${this.ctx.url}: the store started an upload without an id`)
      this.uploadId = uploadId
      // Before any part is sent: from here on a crash leaves an upload that recovery can find and abort.
      this.journalPath = await this.ctx.journal.record({ storage: this.ctx.url, key: this.ctx.key, uploadId })
      return uploadId
    })()
    return this.creating
  }

  private async uploadPart (n: number, body: Buffer): Promise<CompletedPart> {
    const uploadId = await this.upload()
    const checksum = sha256(body)
    const { client, bucket, objectKey, partRetry } = this.ctx
    for (let attempt = 1; ; attempt++) {
      try {
        const sent = await client.send(new UploadPartCommand({
          Bucket: bucket, Key: objectKey, UploadId: uploadId, PartNumber: n, Body: body, ContentLength: body.length, ChecksumSHA256: checksum,
        }), { abortSignal: this.stop.signal })
        return { PartNumber: n, ETag: sent.ETag, ChecksumSHA256: checksum }
      } catch (err) {
        if (this.stop.signal.aborted || attempt >= partRetry.attempts || !isTransientS3Error(err)) throw err
        await sleep(backoffDelay(attempt, partRetry), this.stop.signal)
      }
    }
  }

  async commit ({ sizeBytes }: { sizeBytes: number }): Promise<void> {
    if (this.state !== 'writing') throw new InvalidStateError(`the write of ${this.ctx.key} was already ${this.state}`)
    if (this.failure) { await this.abort().catch(() => {}); throw this.failure }
    if (!this.stream.writableFinished) throw new InvalidStateError(`commit of ${this.ctx.key} before its stream finished`)
    this.state = 'committing'
    const { client, bucket, objectKey, key, url } = this.ctx
    const refuse = async (err: PgkeepError): Promise<never> => {
      this.state = 'writing'
      await this.abort().catch(() => {})
      throw err
    }
    if (this.bytesWritten !== sizeBytes) await refuse(new IntegrityError(`${key}: ${this.bytesWritten} bytes were written but ${sizeBytes} were expected`))
    const conflict = (): PgkeepError => new PgkeepError('CONFLICT', `a backup named ${key} already exists in ${url}`)
    try {
      if (await this.exists()) await refuse(conflict())
      if (this.uploadId === undefined) {
        const body = this.single ?? Buffer.alloc(0)
        // If-None-Match makes the existence check atomic on stores that honour it (AWS since 2024, MinIO, R2).
        await client.send(new PutObjectCommand({
          Bucket: bucket, Key: objectKey, Body: body, ContentLength: body.length, ChecksumSHA256: sha256(body), IfNoneMatch: '*', ContentType: 'application/octet-stream',
        }))
        this.single = undefined
      } else {
        const parts = [...this.parts].sort((a, b) => a.PartNumber! - b.PartNumber!)
        try {
          await client.send(new CompleteMultipartUploadCommand({
            Bucket: bucket, Key: objectKey, UploadId: this.uploadId, MultipartUpload: { Parts: parts }, IfNoneMatch: '*',
          }))
        } catch (err) {
          // A complete retried after a lost reply finds its upload already completed: the object is the proof.
          if (!hasS3Code(err, 'NoSuchUpload') || (await this.storedSize()) !== sizeBytes) throw err
        }
        await this.forgetUpload()
      }
    } catch (err) {
      if (err instanceof PgkeepError) throw err
      if (hasS3Code(err, 'PreconditionFailed') || httpStatusOf(err) === 412) await refuse(conflict())
      this.state = 'writing'
      throw toStorageError(err, url, `committing ${key}`)
    }
    const stored = await this.storedSize()
    if (stored !== sizeBytes) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey })).catch(() => {})
      this.state = 'aborted'
      throw new IntegrityError(`${key} in ${url}: the store holds ${stored ?? 'no'} bytes where ${sizeBytes} were written; the object was removed`)
    }
    this.state = 'committed'
    this.detachSignal()
  }

  private async exists (): Promise<boolean> {
    return (await this.storedSize()) !== undefined
  }

  private async storedSize (): Promise<number | undefined> {
    try {
      const head = await this.ctx.client.send(new HeadObjectCommand({ Bucket: this.ctx.bucket, Key: this.ctx.objectKey }))
      return head.ContentLength ?? 0
    } catch (err) {
      if (isS3NotFound(err)) return undefined
      throw toStorageError(err, this.ctx.url, `checking ${this.ctx.key}`)
    }
  }

  private async forgetUpload (): Promise<void> {
    if (this.journalPath !== undefined) await this.ctx.journal.remove(this.journalPath)
    this.journalPath = undefined
    this.uploadId = undefined
  }

  /** Cancels parts in flight and aborts the multipart upload; the journal entry stays if the store cannot be told. */
  async abort (): Promise<void> {
    if (this.state === 'committed') return
    this.state = 'aborted'
    this.detachSignal()
    this.aborting ??= (async () => {
      this.stop.abort()
      this.single = undefined
      this.current = undefined
      if (!this.stream.destroyed) this.stream.destroy()
      await Promise.allSettled([...this.inFlight])
      // an upload being created right now gets its id after this: wait for it, so it is aborted too
      await this.creating?.catch(() => {})
      if (this.uploadId === undefined) return
      try {
        await this.ctx.client.send(new AbortMultipartUploadCommand({ Bucket: this.ctx.bucket, Key: this.ctx.objectKey, UploadId: this.uploadId }))
      } catch (err) {
        if (!hasS3Code(err, 'NoSuchUpload')) {
          this.aborting = undefined
          throw toStorageError(err, this.ctx.url, `aborting the upload of ${this.ctx.key}`)
        }
      }
      await this.forgetUpload()
    })()
    return this.aborting
  }
}

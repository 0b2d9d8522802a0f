import { createHash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { IntegrityError } from '../../errors.ts'
import { mismatchError, type ExpectedBytes } from './checked-read.ts'

const CHUNK_BYTES = 1024 * 1024

/** A pushed chunk's buffer, free again once the consumer has let go of every byte up to `end`. */
interface Lent { buffer: Buffer, end: number }

/**
 * A local file's bytes, hashed as they are read, under the same rule as `hashCheck` (the last chunk leaves only
 * once the whole file matched its manifest), read into a few buffers used again and again instead of a new one per
 * chunk. A fresh MiB per chunk is a GiB of short-lived buffers per GiB sent, and in a process the size of the
 * server V8 answers that with a full mark-compact every ~60 ms: in bench/download.ts that doubled the CPU of
 * hashing a file (2.3 s for 1 GiB against 0.92 s with one buffer reused).
 *
 * A buffer is written over only once the consumer no longer holds any of its bytes. `consumerHeld` says how many
 * bytes it still holds: for an HTTP response piped from this stream, its `writableLength` (what neither it nor its
 * socket has handed to the kernel yet). Only a consumer that can say that may use this stream.
 */
export class PooledCheckedRead extends Readable {
  readonly #expected: ExpectedBytes
  readonly #consumerHeld: () => number
  readonly #onMismatch: (err: IntegrityError) => Promise<void>
  readonly #hash = createHash('sha256')
  readonly #free: Buffer[] = []
  /** pushed chunks' buffers, oldest first */
  readonly #lent: Lent[] = []
  #fh?: FileHandle
  #position = 0
  #pushed = 0
  /** the last chunk read: it leaves when the next one is read, or when the whole file matched */
  #held?: { buffer: Buffer, bytes: number }
  #reading = false

  /** `fh`: the file, open; the stream closes it */
  constructor (fh: FileHandle, expected: ExpectedBytes, consumerHeld: () => number, onMismatch: (err: IntegrityError) => Promise<void>) {
    super({ highWaterMark: 0 })
    this.#fh = fh
    this.#expected = expected
    this.#consumerHeld = consumerHeld
    this.#onMismatch = onMismatch
  }

  override _read (): void {
    if (!this.#reading) this.#readNext()
  }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    const fh = this.#fh
    this.#fh = undefined
    if (fh === undefined) callback(err)
    else fh.close().then(() => callback(err), () => callback(err))
  }

  #readNext (): void {
    const fh = this.#fh
    if (fh === undefined) return
    this.#reading = true
    const buffer = this.#buffer()
    fh.read(buffer, 0, buffer.length, this.#position).then(({ bytesRead }) => {
      this.#reading = false
      if (this.destroyed) return
      if (bytesRead === 0) {
        this.#end()
        return
      }
      this.#position += bytesRead
      this.#hash.update(buffer.subarray(0, bytesRead))
      const previous = this.#held
      this.#held = { buffer, bytes: bytesRead }
      // the first chunk waits for the second; after that, one goes out per one read
      if (previous === undefined || this.#send(previous)) this.#readNext()
    }, (err: Error) => {
      this.#reading = false
      this.destroy(err)
    })
  }

  #send (chunk: { buffer: Buffer, bytes: number }): boolean {
    this.#pushed += chunk.bytes
    this.#lent.push({ buffer: chunk.buffer, end: this.#pushed })
    return this.push(chunk.buffer.subarray(0, chunk.bytes))
  }

  #end (): void {
    const got = this.#hash.digest('hex')
    if (got === this.#expected.sha256 && this.#position === this.#expected.sizeBytes) {
      if (this.#held !== undefined) this.#send(this.#held)
      this.#held = undefined
      this.push(null)
      return
    }
    const err = mismatchError(this.#expected, got, this.#position)
    this.#held = undefined
    // recorded before the stream fails, so whoever sees the failed transfer also finds the backup flagged
    this.#onMismatch(err).then(() => this.destroy(err), () => this.destroy(err))
  }

  /**
   * A buffer no one holds: one the consumer let go of, else a new one. How many there are is bounded by what the
   * consumer holds at once: piped, it takes no more while its socket is behind.
   */
  #buffer (): Buffer {
    const released = this.#pushed - this.readableLength - this.#consumerHeld()
    while (this.#lent.length > 0 && this.#lent[0]!.end <= released) this.#free.push(this.#lent.shift()!.buffer)
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES)
  }
}

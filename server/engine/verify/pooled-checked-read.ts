import type { FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { IntegrityError } from '../../errors.ts'
import { mismatchError, type ExpectedBytes } from './checked-read.ts'
import { ThreadHash } from './hash-thread.ts'

const CHUNK_BYTES = 1024 * 1024
/** chunks read but not yet hashed: the reading waits beyond this, or a slow hash would pull the file into memory */
const MAX_UNHASHED = 4

/** A chunk's memory, shared with the hashing thread, and the Buffer over it that is read into and sent. */
interface Slot { memory: SharedArrayBuffer, buffer: Buffer }
/** A chunk read: its slot, its length, and its update's number in the hash. */
interface Chunk { slot: Slot, bytes: number, seq: number }
/** A pushed chunk, its slot free again once the consumer let go of every byte up to `end` and it is hashed. */
interface Lent { slot: Slot, end: number, seq: number }

/**
 * A local file's bytes, hashed as they are read, under the same rule as `hashCheck` (the last chunk leaves only
 * once the whole file matched its manifest), with two differences that make a download about as fast as the
 * hash (bench/download.ts):
 * - The chunks go into a few buffers used again and again, not a new one per chunk. A fresh MiB per chunk is a
 *   GiB of short-lived buffers per GiB sent, and in a process the size of the server V8 answers that with a full
 *   mark-compact every ~60 ms: it doubled the CPU of hashing a file (2.3 s for 1 GiB against 0.92 s).
 * - The hash runs on a thread of its own (`ThreadHash`), over the same shared memory that is sent: the thread
 *   writing to the socket no longer waits for it.
 *
 * A buffer is written over only once the hashing thread is done with it and the consumer no longer holds any of its
 * bytes. `consumerHeld` says how many it still holds: for an HTTP response piped from this stream, its
 * `writableLength` (what neither it nor its socket has handed to the kernel yet). Only a consumer that can say that
 * may use this stream.
 */
export class PooledCheckedRead extends Readable {
  readonly #expected: ExpectedBytes
  readonly #consumerHeld: () => number
  readonly #onMismatch: (err: IntegrityError) => Promise<void>
  readonly #hash: ThreadHash
  readonly #free: Slot[] = []
  /** pushed chunks, oldest first */
  readonly #lent: Lent[] = []
  #fh?: FileHandle
  #position = 0
  #pushed = 0
  /** the last chunk read: it leaves when the next one is read, or when the whole file matched */
  #held?: Chunk
  /** the consumer asked for more and has not said stop (push returned false) since */
  #wanted = false
  #pumping = false
  /** the read after the chunk being handed on */
  #next?: Promise<{ slot: Slot, bytesRead: number }>
  /** resolves when the hashing thread finished another chunk */
  #hashedMore?: () => void

  /** `fh`: the file, open; the stream closes it */
  constructor (fh: FileHandle, expected: ExpectedBytes, consumerHeld: () => number, onMismatch: (err: IntegrityError) => Promise<void>) {
    super({ highWaterMark: 0 })
    this.#fh = fh
    this.#expected = expected
    this.#consumerHeld = consumerHeld
    this.#onMismatch = onMismatch
    this.#hash = new ThreadHash(() => this.#hashedMore?.(), err => this.destroy(err))
  }

  override _read (): void {
    this.#wanted = true
    if (!this.#pumping) this.#pump().catch((err: Error) => this.destroy(err))
  }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    this.#hash.drop()
    this.#hashedMore?.()
    const fh = this.#fh
    this.#fh = undefined
    // a read still in flight ends before the handle closes (FileHandle.close waits for it)
    if (fh === undefined) callback(err)
    else fh.close().then(() => callback(err), () => callback(err))
  }

  /**
   * Reads, hands to the hash and sends while the consumer wants more. The next read is already in flight (on
   * libuv's threads) meanwhile: one read at a time, so reading at the file's own position stays in order.
   */
  async #pump (): Promise<void> {
    this.#pumping = true
    try {
      while (this.#wanted && !this.destroyed) {
        const reading = this.#next ?? this.#read()
        this.#next = undefined
        const { slot, bytesRead } = await reading
        if (this.destroyed) return
        if (bytesRead === 0) {
          await this.#end()
          return
        }
        this.#position += bytesRead
        const seq = this.#hash.update(slot.memory, bytesRead)
        const previous = this.#held
        this.#held = { slot, bytes: bytesRead, seq }
        await this.#hashCatchingUp(seq)
        if (this.destroyed) return
        this.#next = this.#read()
        // the first chunk waits for the second; after that, one goes out per one read. Cleared before the push:
        // a consumer may ask for more (_read) from inside it
        if (previous === undefined) continue
        this.#wanted = false
        if (this.#send(previous)) this.#wanted = true
      }
    } finally {
      this.#pumping = false
    }
  }

  /** Waits while more than MAX_UNHASHED chunks up to `seq` are still to hash. */
  async #hashCatchingUp (seq: number): Promise<void> {
    while (seq - this.#hash.hashed >= MAX_UNHASHED && !this.destroyed) {
      await new Promise<void>(resolve => { this.#hashedMore = resolve })
      this.#hashedMore = undefined
    }
  }

  #read (): Promise<{ slot: Slot, bytesRead: number }> {
    const fh = this.#fh
    const slot = this.#slot()
    if (fh === undefined) return Promise.resolve({ slot, bytesRead: 0 })
    const reading = fh.read(slot.buffer, 0, slot.buffer.length, null).then(({ bytesRead }) => ({ slot, bytesRead }))
    // awaited by the next turn of the pump, unless the stream is destroyed first
    reading.catch(() => {})
    return reading
  }

  #send (chunk: Chunk): boolean {
    this.#pushed += chunk.bytes
    this.#lent.push({ slot: chunk.slot, end: this.#pushed, seq: chunk.seq })
    return this.push(chunk.slot.buffer.subarray(0, chunk.bytes))
  }

  async #end (): Promise<void> {
    const got = await this.#hash.digest()
    if (this.destroyed) return
    if (got === this.#expected.sha256 && this.#position === this.#expected.sizeBytes) {
      if (this.#held !== undefined) this.#send(this.#held)
      this.#held = undefined
      this.push(null)
      return
    }
    const err = mismatchError(this.#expected, got, this.#position)
    this.#held = undefined
    // recorded before the stream fails, so whoever sees the failed transfer also finds the backup flagged
    await this.#onMismatch(err).catch(() => {})
    this.destroy(err)
  }

  /**
   * Memory no one uses: a pushed chunk's that is hashed and that the consumer let go of, else new. How many there
   * are is bounded by what the consumer holds at once (piped, it takes no more while its socket is behind) and by
   * MAX_UNHASHED.
   */
  #slot (): Slot {
    const released = this.#pushed - this.readableLength - this.#consumerHeld()
    const hashed = this.#hash.hashed
    while (this.#lent.length > 0 && this.#lent[0]!.end <= released && this.#lent[0]!.seq <= hashed) this.#free.push(this.#lent.shift()!.slot)
    const reused = this.#free.pop()
    if (reused !== undefined) return reused
    const memory = new SharedArrayBuffer(CHUNK_BYTES)
    return { memory, buffer: Buffer.from(memory) }
  }
}

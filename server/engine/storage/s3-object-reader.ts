import { Readable } from 'node:stream'
import { PgkeepError } from '../../errors.ts'
import { backoffDelay, type RetryPolicy } from '../retry.ts'

/** One GetObject reply: its body holds bytes [from, ...] of an object of `total` bytes with this ETag. */
export interface OpenedRange {
  body: Readable
  from: number
  total: number
  etag?: string
}

export interface ResumableReadOptions {
  /** GetObject from byte `start` to `end` (inclusive; undefined = the end), pinned to `etag` when given */
  open: (start: number, end: number | undefined, etag?: string) => Promise<OpenedRange>
  start: number
  end?: number
  retry: RetryPolicy
  /** names the object in errors: `s3://bucket/prefix: reading key` */
  what: string
}

/**
 * The bytes [start, end] of an object as one stream that survives dropped connections: when a body breaks
 * off (a reset, a proxy's timeout, or our idle timeout while the consumer - pg_restore building an index -
 * did not read for a while) the rest is asked for again from where it stopped, pinned to the first reply's
 * ETag so a replaced object cannot be spliced in (INTEGRITY_FAILED). Each stall gets `retry.attempts` tries;
 * a stall that makes progress starts the count afresh. It also cuts out the asked range when a store sends
 * more (HTTP allows ignoring Range; s3rver widens `bytes=0-0`).
 */
export async function resumableRead (opts: ResumableReadOptions): Promise<Readable> {
  const first = await opts.open(opts.start, opts.end)
  const last = Math.min(opts.end ?? Infinity, first.total - 1)
  const etag = first.etag

  async function * bytes (): AsyncGenerator<Buffer> {
    let pos = opts.start
    let current: OpenedRange = first
    let failures = 0
    for (;;) {
      const { body } = current
      let seen = current.from
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          const begin = Math.max(0, pos - seen)
          seen += chunk.length
          if (begin >= chunk.length) continue
          const piece = chunk.subarray(begin, Math.min(chunk.length, begin + last + 1 - pos))
          pos += piece.length
          failures = 0
          yield piece
          if (pos > last) return
        }
        if (pos > last) return
        throw new Error(`the body ended after ${pos - opts.start} bytes`)
      } catch (err) {
        if (err instanceof PgkeepError) throw err
        if (++failures >= opts.retry.attempts) {
          throw new PgkeepError('STORAGE_UNAVAILABLE', `${opts.what}: the connection broke off after ${pos - opts.start} of ${last + 1 - opts.start} bytes, ${failures} times (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
        }
      } finally {
        body.destroy()
      }
      await new Promise(resolve => setTimeout(resolve, backoffDelay(failures, opts.retry)))
      current = await opts.open(pos, last, etag)
      if (current.from > pos) throw new PgkeepError('STORAGE_UNAVAILABLE', `${opts.what}: asked for bytes from ${pos}, the store sent from ${current.from}`)
    }
  }

  if (first.from > opts.start) {
    first.body.destroy()
    throw new PgkeepError('STORAGE_UNAVAILABLE', `${opts.what}: asked for bytes from ${opts.start}, the store sent from ${first.from}`)
  }
  return Readable.from(bytes(), { objectMode: false })
}

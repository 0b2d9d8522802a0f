import { createHash } from 'node:crypto'
import { Transform } from 'node:stream'
import { IntegrityError } from '../../errors.ts'

/** What a stored file must hash to, and how long it must be: its manifest entry. */
export interface ExpectedBytes {
  path: string
  sizeBytes: number
  sha256: string
}

/** Why a transfer is cut: the bytes read (`bytes` of them, hashing to `got`) are not what the manifest promises. */
export function mismatchError (expected: ExpectedBytes, got: string, bytes: number): IntegrityError {
  return new IntegrityError(bytes === expected.sizeBytes
    ? `the stored bytes of ${expected.path} have sha256 ${got}, the manifest says ${expected.sha256}; the transfer was cut`
    : `${expected.path} gave ${bytes} bytes, the manifest says ${expected.sizeBytes}; the transfer was cut`)
}

/**
 * The stored bytes of one file passed through while they are hashed, always one chunk behind: the last chunk
 * leaves only once the whole file hashed to its manifest's sha256 and size. On a mismatch `onMismatch` runs
 * (record it) and the stream fails instead, so whoever counts bytes downstream (Content-Length, a tar entry's
 * size, age's final chunk) ends short: the reader sees a failed transfer, never a complete wrong file.
 */
export function hashCheck (expected: ExpectedBytes, onMismatch: (err: IntegrityError) => Promise<void>): Transform {
  const hash = createHash('sha256')
  let bytes = 0
  let held: Buffer | undefined
  return new Transform({
    transform (chunk: Buffer, _enc, cb) {
      hash.update(chunk)
      bytes += chunk.length
      const out = held
      held = chunk
      cb(null, out)
    },
    flush (cb) {
      const got = hash.digest('hex')
      if (got === expected.sha256 && bytes === expected.sizeBytes) {
        cb(null, held)
        return
      }
      const err = mismatchError(expected, got, bytes)
      held = undefined
      // recorded before the stream fails, so whoever sees the failed transfer also finds the backup flagged
      onMismatch(err).then(() => { cb(err) }, () => { cb(err) })
    },
  })
}

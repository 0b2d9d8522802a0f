import type { Writable as WritableLike } from 'node:stream'
import { finished, Writable } from 'node:stream'

/**
 * A Writable that forwards into a child's stdin with backpressure, and turns the child closing its
 * stdin early (EPIPE) into a quiet stop instead of a pipeline error: the child's exit status says
 * why it stopped, and that is the message worth reporting.
 *
 * With `drainAfterClose` the bytes that arrive after the child stopped reading are discarded but
 * still consumed, so a full read of the source (and its decompressor's own checks) always happens.
 */
export function feedChild (stdin: WritableLike, opts: { drainAfterClose: boolean }): Writable {
  let closed = false
  stdin.on('error', () => { closed = true })
  stdin.on('close', () => { closed = true })
  return new Writable({
    highWaterMark: 1024 * 1024,
    write (chunk: Buffer, _enc, cb) {
      if (closed) {
        if (opts.drainAfterClose) cb()
        else cb(new ChildStoppedReading())
        return
      }
      if (stdin.write(chunk)) { cb(); return }
      const resume = (): void => {
        stdin.off('drain', resume)
        stdin.off('close', resume)
        cb()
      }
      stdin.once('drain', resume)
      stdin.once('close', resume)
    },
    // finished only once the child's pipe took every byte: the pipeline destroys this stream right after, and
    // destroying stdin before then threw away what a slow child had not read yet (a restore fed a cut-off script)
    final (cb) {
      if (closed) { cb(); return }
      stdin.end()
      // finish, error or close, whichever comes: a child that exits first is explained by its exit status
      finished(stdin, { readable: false }, () => { cb() })
    },
    destroy (err, cb) {
      if (err && !closed) stdin.destroy()
      cb(err)
    },
  })
}

/** Raised into the pipeline when the child is gone; callers report the child's own failure instead. */
export class ChildStoppedReading extends Error {
  constructor () { super('the child process stopped reading its input') }
}

import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { Duplex, PassThrough } from 'node:stream'
import { PgkeepError } from '../../errors.ts'
import { spawnChild } from './child-process.ts'

/**
 * A compressing, decompressing, encrypting or decrypting stage for a stream pipeline. `stream` is the Duplex
 * to pipe through; a stage that runs as a child process (zstd -T0, age) has its exit status checked separately,
 * and `kill` lets a cancel stop it.
 */
export interface CodecStage {
  stream: Duplex
  kill: (signal?: NodeJS.Signals) => void
  /** the child's pid, for a codec that runs as a child process */
  pid?: number
  /**
   * For a codec that runs as a child: resolves once it has ended, with why it failed (undefined for a
   * clean exit). A pipeline that broke on EPIPE asks this for the real cause: the child died first.
   */
  failure?: () => Promise<PgkeepError | undefined>
}

/** How a stage's child ended badly: its exit, and the tail of what it wrote on stderr. */
export interface ChildExit {
  pid?: number
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
}

export interface ChildStageSpec {
  /** the program's name for the could-not-start message, e.g. "zstd" */
  program: string
  path: string
  args: string[]
  env: NodeJS.ProcessEnv
  /** the error for a non-zero exit or a death by signal, in the stage's own words */
  describeFailure: (exit: ChildExit) => PgkeepError
  /** hears how the child ended, its stderr tail included (zstd -vv reports there how many bytes it read) */
  onClose?: (exit: ChildExit) => void
}

/** A child process as a pipeline stage: bytes in on its stdin, out of its stdout. */
export function childStage (spec: ChildStageSpec): CodecStage {
  // own process group, like pg_dump: Ctrl-C is pgkeep's to handle
  const child = spawnChild(spec.path, spec.args, { env: spec.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] }) as ChildProcessWithoutNullStreams
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-2000) })
  // The readable side ends only once the child has exited 0 AND every byte of its stdout has been passed on: a
  // truncated or corrupt input makes zstd or age exit non-zero after it has already flushed its output, and that
  // must fail the pipeline, not end it; and ending on the exit alone could cut off output still buffered in the pipe.
  const output = new PassThrough({ highWaterMark: 1024 * 1024 })
  child.stdout.pipe(output, { end: false })
  const stream = Duplex.from({ writable: child.stdin, readable: output })
  let stdoutDone = false
  let exitedOk = false
  const endIfDone = (): void => { if (stdoutDone && exitedOk) output.end() }
  child.stdout.once('end', () => { stdoutDone = true; endIfDone() })
  let resolveFailure!: (e: PgkeepError | undefined) => void
  const failed = new Promise<PgkeepError | undefined>(resolve => { resolveFailure = resolve })
  child.on('error', err => {
    const e = new PgkeepError('INTERNAL', `could not start ${spec.program} (${spec.path}): ${(err as NodeJS.ErrnoException).code ?? err.message}`)
    resolveFailure(e)
    stream.destroy(e)
  })
  child.on('close', (code, signal) => {
    spec.onClose?.({ pid: child.pid, code, signal, stderr })
    if (code !== 0) {
      const e = spec.describeFailure({ pid: child.pid, code, signal, stderr })
      resolveFailure(e)
      stream.destroy(e)
      return
    }
    resolveFailure(undefined)
    exitedOk = true
    endIfDone()
  })
  // the child closes its stdin early on error; swallow EPIPE there, the close handler reports the real cause
  child.stdin.on('error', () => {})
  return { stream, kill: (sig = 'SIGTERM') => { child.kill(sig) }, pid: child.pid, failure: () => failed }
}

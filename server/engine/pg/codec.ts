import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { Duplex, PassThrough } from 'node:stream'
import { createGunzip, createGzip, constants as zlibConstants } from 'node:zlib'
import type { Compression } from '../../../schemas/backup.ts'
import { PgkeepError } from '../../errors.ts'
import { childEnv, describeExit, spawnChild } from './child-process.ts'
import { findZstd } from './tools.ts'

/**
 * A compressing or decompressing stage for a stream pipeline. `stream` is the Duplex to pipe through;
 * zstd runs as a child process (multi-threaded with -T0), so its exit status is checked separately
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

function zstdStage (args: string[], zstdPath: string): CodecStage {
  // own process group, like pg_dump: Ctrl-C is pgkeep's to handle
  const child = spawnChild(zstdPath, args, { env: childEnv(), detached: true, stdio: ['pipe', 'pipe', 'pipe'] }) as ChildProcessWithoutNullStreams
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-2000) })
  // The readable side ends only once zstd has exited 0 AND every byte of its stdout has been passed on: a
  // truncated or corrupt input makes zstd exit non-zero after it has already flushed its output, and that must
  // fail the pipeline, not end it; and ending on the exit alone could cut off output still buffered in the pipe.
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
    const e = new PgkeepError('INTERNAL', `could not start zstd (${zstdPath}): ${(err as NodeJS.ErrnoException).code ?? err.message}`)
    resolveFailure(e)
    stream.destroy(e)
  })
  child.on('close', (code, signal) => {
    if (code !== 0) {
      const why = stderr.trim().split('\n').at(-1)
      const e = new PgkeepError('INTERNAL', `the compressor zstd (pid ${child.pid}) ${describeExit(code, signal)}${why ? `: ${why}` : ''}`,
        { details: { process: 'zstd', pid: child.pid, exitCode: code, signal } })
      resolveFailure(e)
      stream.destroy(e)
      return
    }
    resolveFailure(undefined)
    exitedOk = true
    endIfDone()
  })
  // zstd closes its stdin early on error; swallow EPIPE there, the close handler reports the real cause
  child.stdin.on('error', () => {})
  return { stream, kill: (sig = 'SIGTERM') => { child.kill(sig) }, pid: child.pid, failure: () => failed }
}

export async function createCompressor (compression: Compression, level: number): Promise<CodecStage> {
  if (compression === 'zstd') return zstdStage(['-T0', `-${level}`, '-q', '-c', '-'], await findZstd())
  if (compression === 'gzip') {
    const gz = createGzip({ level, chunkSize: 256 * 1024 })
    return { stream: gz, kill: () => gz.destroy() }
  }
  const pass = new PassThrough({ highWaterMark: 1024 * 1024 })
  return { stream: pass, kill: () => pass.destroy() }
}

export async function createDecompressor (compression: Compression): Promise<CodecStage> {
  if (compression === 'zstd') return zstdStage(['-d', '-q', '-c', '-'], await findZstd())
  if (compression === 'gzip') {
    // finishFlush tolerant of nothing: a truncated gzip must error, not end quietly
    const gunzip = createGunzip({ chunkSize: 256 * 1024, finishFlush: zlibConstants.Z_FINISH })
    return { stream: gunzip, kill: () => gunzip.destroy() }
  }
  const pass = new PassThrough({ highWaterMark: 1024 * 1024 })
  return { stream: pass, kill: () => pass.destroy() }
}

/** One stage of reading a backup back: its name says which one failed (age, zstd, gzip). */
export interface Decoder { label: string, stage: CodecStage }

/** The stages that turn a backup's stored bytes back into what pg_dump wrote: decrypt (when encrypted), decompress. */
export async function createDecoders (compression: Compression, decryptor?: () => Promise<CodecStage>): Promise<Decoder[]> {
  const decoders: Decoder[] = []
  if (decryptor) decoders.push({ label: 'age', stage: await decryptor() })
  decoders.push({ label: compression, stage: await createDecompressor(compression) })
  return decoders
}

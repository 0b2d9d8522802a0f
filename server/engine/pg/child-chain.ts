import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { Duplex, PassThrough, type Readable } from 'node:stream'
import { PgkeepError } from '../../errors.ts'
import { spawnChild } from './child-process.ts'
import type { ChildExit, ChildStageSpec, CodecStage } from './child-stage.ts'

// node connects children with socket pairs, so a child whose reader died may see ECONNRESET rather than EPIPE
const LOST_READER = /broken pipe|connection reset by peer/i

interface Ended { index: number, error?: PgkeepError, brokenPipe: boolean }

/**
 * Several children as one pipeline stage, each one's stdout handed to the next one's stdin by the kernel
 * (`zstd | age`): the bytes between them never pass through node, which on a 2-core machine is a good share
 * of what encryption costs a dump (bench/encryption.ts). Same contract as childStage: the readable side ends
 * only once every child has exited 0 and the last one's stdout has ended.
 *
 * When one child fails the others follow (upstream dies of SIGPIPE, downstream sees its input end), so the
 * error reported is decided once all have ended: the upstream-most failure that is not a broken pipe. That
 * is the cause (a damaged file makes `age -d` fail, and only then zstd -d on the cut stream).
 *
 * With `input` (another child's stdout, e.g. pg_dump's) the first child reads it directly: those bytes never
 * pass through node either, and `stream` is only readable. Call it in the same tick as that child was
 * spawned, before node's own read of its stdout can take a first chunk. With `output` (an open file) the last
 * child writes there itself, and `stream` only ends (empty) once every child has exited 0.
 */
export function childChain (specs: ChildStageSpec[], opts: { input?: Readable, output?: number } = {}): CodecStage {
  if (specs.length === 0) throw new PgkeepError('INTERNAL', 'a child chain needs at least one program')
  const children: ChildProcessWithoutNullStreams[] = []
  for (const [i, spec] of specs.entries()) {
    const upstream = children.at(-1)
    const toFile = i === specs.length - 1 && opts.output !== undefined
    const child = spawnChild(spec.path, spec.args, {
      env: spec.env, detached: true, stdio: [upstream ? upstream.stdout : opts.input ?? 'pipe', toFile ? opts.output : 'pipe', 'pipe'],
    }) as ChildProcessWithoutNullStreams
    // the next child now holds the read end; ours must go, or upstream would block on a full pipe instead of
    // getting EPIPE when its reader dies
    ;(upstream?.stdout ?? opts.input)?.destroy()
    children.push(child)
  }
  const first = children[0]
  const last = children[children.length - 1]
  const output = new PassThrough({ highWaterMark: 1024 * 1024 })
  last.stdout?.pipe(output, { end: false })
  const stream = opts.input ? output : Duplex.from({ writable: first.stdin, readable: output })
  first.stdin?.on('error', () => {}) // EPIPE: the close handlers report the real cause

  let resolveFailure!: (e: PgkeepError | undefined) => void
  const failed = new Promise<PgkeepError | undefined>(resolve => { resolveFailure = resolve })
  let lastStdoutDone = opts.output !== undefined
  const ended: Ended[] = []
  const settle = (): void => {
    if (ended.length < children.length || !lastStdoutDone) return
    const failures = ended.filter(e => e.error).sort((a, b) => a.index - b.index)
    const cause = failures.find(f => !f.brokenPipe) ?? failures[0]
    resolveFailure(cause?.error)
    if (cause?.error) stream.destroy(cause.error)
    else output.end()
  }
  last.stdout?.once('close', () => { lastStdoutDone = true; settle() })
  children.forEach((child, index) => {
    const spec = specs[index]
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-2000) })
    child.on('error', err => {
      // could not start: nothing else will end this chain, so end it now
      children.forEach(c => { if (c !== child) c.kill('SIGKILL') })
      const e = new PgkeepError('INTERNAL', `could not start ${spec.program} (${spec.path}): ${(err as NodeJS.ErrnoException).code ?? err.message}`)
      resolveFailure(e)
      stream.destroy(e)
    })
    child.on('close', (code, signal) => {
      const exit: ChildExit = { pid: child.pid, code, signal, stderr }
      spec.onClose?.(exit)
      ended.push(code === 0
        ? { index, brokenPipe: false }
        : { index, error: spec.describeFailure(exit), brokenPipe: signal === 'SIGPIPE' || LOST_READER.test(stderr) })
      settle()
    })
  })
  return {
    stream,
    kill: (sig = 'SIGTERM') => { for (const c of children) c.kill(sig) },
    pid: first.pid,
    failure: () => failed,
  }
}

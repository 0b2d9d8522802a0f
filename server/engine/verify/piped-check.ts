import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import type { Writable } from 'node:stream'
import type { Compression } from '../../../schemas/backup.ts'
import { PgkeepError } from '../../errors.ts'
import { decryptSpec } from '../pg/age.ts'
import { feedChild } from '../pg/child-feed.ts'
import { childEnv, spawnChild } from '../pg/child-process.ts'
import type { ChildExit, ChildStageSpec } from '../pg/child-stage.ts'
import { zstdSpec } from '../pg/codec.ts'
import { codecMessage, errorLines, type CheckOutcome } from './archive-check.ts'

/** One program decoding stored bytes (age -d, zstd -d); its label starts its messages, as in the node pipeline. */
export interface ChildDecoder { label: 'age' | 'zstd', spec: ChildStageSpec }

/**
 * The decoders of a backup when every one of them is a child (age, zstd): undefined when one runs in node (gzip)
 * or there is nothing to decode, which keep the pipeline through node (archive-check.ts).
 */
export async function childDecoders (compression: Compression, identityFile?: string): Promise<ChildDecoder[] | undefined> {
  if (compression === 'gzip') return undefined
  const decoders: ChildDecoder[] = []
  if (identityFile !== undefined) decoders.push({ label: 'age', spec: await decryptSpec(identityFile) })
  if (compression === 'zstd') decoders.push({ label: 'zstd', spec: await zstdSpec('decompress') })
  return decoders.length > 0 ? decoders : undefined
}

/** What stopped a check: a decoder (its message as the node pipeline words it), or pg_restore itself. */
export interface PipedOutcome extends CheckOutcome { failedStage?: 'age' | 'zstd' | 'pg_restore' }

export interface PipedCheck {
  /** where the stored bytes go: into the first decoder; what comes after it stopped reading is drained */
  sink: Writable
  verdict: Promise<PipedOutcome>
}

// node connects children with socket pairs, so a child whose reader died may see ECONNRESET rather than EPIPE
const LOST_READER = /broken pipe|connection reset by peer/i
const lostReader = (e: ChildExit): boolean => e.signal === 'SIGPIPE' || LOST_READER.test(e.stderr)

/**
 * `age -d | zstd -d | pg_restore -f /dev/null -F c|t`, the children joined by kernel pipes: the decoded bytes (the
 * bulk, several times the stored size) never pass through node, which only writes the stored bytes into the first
 * child, hashing them on the way (validator.ts). The verdict is decided once all have ended, in the order the node
 * pipeline gives: a decoder that failed (age's key problem thrown: it says nothing of the backup), pg_restore stuck
 * after its input ended, pg_restore's own complaint. A decoder that lost its reader while pg_restore succeeded is
 * no failure: pg_restore stops before a tar's padding, and the bytes it left were hashed all the same.
 */
export function pipedPgRestoreCheck (pgRestorePath: string, format: 'custom' | 'tar', decoders: ChildDecoder[], opts: { signal?: AbortSignal, eofGraceMs: number }): PipedCheck {
  if (opts.signal?.aborted) throw new PgkeepError('CANCELLED', 'validation cancelled')
  const programs = [...decoders.map(d => d.spec), { path: pgRestorePath, args: ['-f', '/dev/null', '-F', format === 'custom' ? 'c' : 't'], env: childEnv() }]
  const children: ChildProcessWithoutNullStreams[] = []
  for (const [i, p] of programs.entries()) {
    const upstream = children.at(-1)
    const last = i === programs.length - 1
    children.push(spawnChild(p.path, p.args, { env: p.env, detached: true, stdio: [upstream ? upstream.stdout : 'pipe', last ? 'ignore' : 'pipe', 'pipe'] }) as ChildProcessWithoutNullStreams)
    // the next child holds the read end now; ours must go, or upstream would block on a full pipe instead of
    // getting EPIPE when its reader dies
    upstream?.stdout.destroy()
  }
  const pgRestore = children[children.length - 1]
  const killAll = (): void => { for (const c of children) c.kill('SIGKILL') }
  let stuck = false
  let stuckTimer: NodeJS.Timeout | undefined
  const exits = children.map((child, i) => new Promise<ChildExit & { startFailed?: string }>(resolve => {
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-16_000) })
    child.once('error', err => {
      killAll()
      resolve({ pid: child.pid, code: null, signal: null, stderr, startFailed: (err as NodeJS.ErrnoException).code ?? err.message })
    })
    child.once('close', (code, signal) => {
      const exit = { pid: child.pid, code, signal, stderr }
      if (i === decoders.length - 1) {
        // pg_restore has nothing slow left once its input ended (it writes to /dev/null): still running only if
        // stuck, as it is on some truncated tars. A decoder that failed has already given the verdict.
        if (code !== 0 && !lostReader(exit)) pgRestore.kill('SIGKILL')
        else stuckTimer = setTimeout(() => { stuck = true; pgRestore.kill('SIGKILL') }, opts.eofGraceMs)
      }
      resolve(exit)
    })
  }))
  const onAbort = (): void => killAll()
  opts.signal?.addEventListener('abort', onAbort, { once: true })

  const verdict = (async (): Promise<PipedOutcome> => {
    const ended = await Promise.all(exits)
    clearTimeout(stuckTimer)
    opts.signal?.removeEventListener('abort', onAbort)
    if (opts.signal?.aborted) throw new PgkeepError('CANCELLED', 'validation cancelled')
    const notStarted = ended.findIndex(e => e.startFailed !== undefined)
    if (notStarted >= 0) {
      const name = decoders[notStarted]?.spec.program ?? 'pg_restore'
      throw new PgkeepError('INTERNAL', `could not start ${name} (${programs[notStarted].path}): ${ended[notStarted].startFailed}`)
    }
    for (const [i, d] of decoders.entries()) {
      const e = ended[i]
      if (e.code === 0 || lostReader(e)) continue
      const err = d.spec.describeFailure(e)
      // a key that does not fit (or cannot be read) is pgkeep's setup to fix, not a verdict on the backup
      if (err.code === 'CONFIG_INVALID') throw err
      return { ok: false, failedStage: d.label, message: d.label === 'age' ? err.message : codecMessage(d.label, err) }
    }
    const exit = ended[ended.length - 1]
    if (stuck) return { ok: false, failedStage: 'pg_restore', message: `pg_restore did not finish within ${opts.eofGraceMs / 1000} s of the end of its input (a truncated archive?)` }
    const errors = errorLines(exit.stderr)
    if (exit.code !== 0 || errors.length > 0) {
      const lastLine = exit.stderr.trim().split('\n').at(-1)?.trim()
      const why = errors.length > 0 ? errors.slice(-3).join('; ') : `pg_restore exited with ${exit.code ?? exit.signal}${lastLine ? `: ${lastLine}` : ''}`
      return { ok: false, failedStage: 'pg_restore', message: why }
    }
    return { ok: true }
  })()
  return { sink: feedChild(children[0].stdin, { drainAfterClose: true }), verdict }
}

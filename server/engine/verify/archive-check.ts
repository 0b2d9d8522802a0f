import { Transform, Writable, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { feedChild } from '../pg/child-feed.ts'
import { childEnv, spawnChild } from '../pg/child-process.ts'
import type { Decoder } from '../pg/backup-codec.ts'
import { PgkeepError } from '../../errors.ts'
import { firstStageFailure } from '../pg/backup-codec.ts'

/**
 * Structural checks by a full read of a backup's bytes: pg_restore renders the whole archive to
 * /dev/null (reading every data block, which `--list` does not), and plain SQL is checked for
 * pg_dump's header and its "dump complete" trailer. Corruption is a result, never a throw.
 */
export interface CheckOutcome { ok: boolean, message?: string }

const SNIFF_BYTES = 512
export const EOF_GRACE_MS = 30_000

/** Why a file is not what its record says, decided from its first decompressed bytes. */
export function sniffArchive (head: Buffer, format: 'custom' | 'tar'): string | undefined {
  const looksPlain = head.subarray(0, 2).toString('latin1') === '--'
  const found = head.subarray(0, 5).toString('latin1') === 'PGDMP'
    ? 'it is a pg_dump custom archive'
    : looksPlain ? 'it looks like plain SQL' : undefined
  if (format === 'custom') {
    if (head.subarray(0, 5).toString('latin1') === 'PGDMP') return undefined
    return `not a pg_dump custom archive${found ? ` (${found})` : ''}`
  }
  // pg_dump's tar writer puts toc.dat first, in a POSIX ustar header
  if (head.length >= 263 && head.subarray(257, 262).toString('latin1') === 'ustar' && head.subarray(0, 8).toString('latin1') === 'toc.dat\0') return undefined
  return `not a pg_dump tar archive${found ? ` (${found})` : ''}`
}

class SniffError extends Error {}

function sniffer (format: 'custom' | 'tar'): Transform {
  let head: Buffer = Buffer.alloc(0)
  let decided = false
  const decide = (): Error | undefined => {
    decided = true
    const why = sniffArchive(head, format)
    return why === undefined ? undefined : new SniffError(why)
  }
  return new Transform({
    transform (chunk: Buffer, _enc, cb) {
      if (!decided) {
        head = Buffer.concat([head, chunk]).subarray(0, SNIFF_BYTES)
        if (head.length >= SNIFF_BYTES) { const err = decide(); if (err) { cb(err); return } }
      }
      cb(null, chunk)
    },
    flush (cb) { cb(decided ? undefined : decide()) },
  })
}

/**
 * What the first decoded bytes of `input` say against `format`, or undefined when they say nothing (they fit,
 * or too little decoded to tell). For a check whose decoded bytes never passed through node (piped-check.ts):
 * asked only once it failed, so a wrong file type is named as the node pipeline's sniffer names it.
 */
export async function sniffHead (input: StreamInput, format: 'custom' | 'tar'): Promise<string | undefined> {
  let head: Buffer = Buffer.alloc(0)
  const collect = new Writable({
    write (chunk: Buffer, _enc, cb) {
      head = Buffer.concat([head, chunk]).subarray(0, SNIFF_BYTES)
      cb(head.length >= SNIFF_BYTES ? new SniffError('enough') : null)
    },
  })
  let ended = false
  try {
    await (pipeline as (...s: unknown[]) => Promise<void>)(input.source, ...input.decoders.map(d => d.stage.stream), collect)
    ended = true
  } catch {
    // enough was read, or the head does not decode (the check's own verdict says why)
  } finally {
    for (const d of input.decoders) d.stage.kill('SIGKILL')
  }
  if (head.length < SNIFF_BYTES && !ended) return undefined
  return sniffArchive(head, format)
}

export function codecMessage (label: string, err: unknown): string {
  const msg = (err as Error)?.message ?? String(err)
  return msg.toLowerCase().startsWith(label) ? msg : `${label}: ${msg}`
}

// only pg_restore's own error lines: other lines can quote user-chosen object names
export function errorLines (stderr: string): string[] {
  return stderr.split('\n').map(l => l.trim()).filter(l => /^pg_restore: (?:error|fatal):/i.test(l))
}

/** A backup read from its store: the stored bytes, and the stages that decrypt and decompress them. */
export interface StreamInput { source: Readable, decoders: Decoder[], sniff?: 'custom' | 'tar' }

/** Wires the decoders' failures to one "first failure" slot and returns the stages to pipe through, with a kill-all. */
function decodeStages (input: StreamInput, onFailure: (message: string) => void): { streams: NodeJS.ReadWriteStream[], kill: () => void, cause: () => Promise<PgkeepError | undefined> } {
  for (const d of input.decoders) d.stage.stream.on('error', err => { onFailure(codecMessage(d.label, err)) })
  return {
    streams: input.decoders.map(d => d.stage.stream),
    kill: () => { for (const d of input.decoders) d.stage.kill('SIGKILL') },
    cause: async () => await firstStageFailure(input.decoders.map(d => d.stage)),
  }
}

/**
 * After a failed read: a decoder child that failed is the cause, whatever else broke after it. A key that does
 * not fit (or cannot be read) says nothing about the backup and is thrown (pgkeep's setup to fix); anything else
 * the decoder says is the verdict.
 */
async function decoderVerdict (decode: { cause: () => Promise<PgkeepError | undefined> }): Promise<string | undefined> {
  const cause = await decode.cause()
  if (cause?.code === 'CONFIG_INVALID') throw cause
  return cause?.message
}

/**
 * Runs pg_restore over `args`, optionally feeding it `input` decompressed on the fly. Reports, in
 * order of usefulness: a wrong file type, a decompressor failure, then pg_restore's own complaint.
 */
export async function runPgRestoreCheck (pgRestorePath: string, args: string[], input: StreamInput | undefined, signal?: AbortSignal, eofGraceMs = EOF_GRACE_MS): Promise<CheckOutcome> {
  if (signal?.aborted) throw new PgkeepError('CANCELLED', 'validation cancelled')
  const child = spawnChild(pgRestorePath, args, { stdio: [input ? 'pipe' : 'ignore', 'ignore', 'pipe'], env: childEnv() })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-16_000) })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, sig) => resolve({ code, signal: sig }))
  })
  let killCodec: (() => void) | undefined
  let readCause: () => Promise<string | undefined> = async () => undefined
  const onAbort = (): void => { child.kill('SIGKILL'); killCodec?.() }
  signal?.addEventListener('abort', onAbort, { once: true })

  let sniffFailure: string | undefined
  let codecFailure: string | undefined
  let readFailure: string | undefined
  let piped: Promise<unknown> = Promise.resolve()
  let stuckTimer: NodeJS.Timeout | undefined
  let stuckAfterEof = false
  if (input) {
    const decode = decodeStages(input, m => { codecFailure ??= m })
    killCodec = decode.kill
    readCause = async () => await decoderVerdict(decode)
    input.source.on('error', err => { readFailure ??= err.message })
    const stages: Array<NodeJS.ReadableStream | NodeJS.WritableStream | NodeJS.ReadWriteStream> = [input.source, ...decode.streams]
    if (input.sniff) {
      const s = sniffer(input.sniff)
      s.on('error', err => { if (err instanceof SniffError) sniffFailure ??= err.message })
      stages.push(s)
    }
    stages.push(feedChild(child.stdin!, { drainAfterClose: true }))
    piped = (pipeline as (...s: unknown[]) => Promise<void>)(...stages).then(
      () => {
        // pg_restore has nothing slow left to do once its input has ended (it writes to /dev/null);
        // it is still running only if stuck, which it is on some truncated tar archives read from a pipe
        stuckTimer = setTimeout(() => { stuckAfterEof = true; child.kill('SIGKILL') }, eofGraceMs)
      },
      () => {
        // the verdict is already known (bad bytes), and pg_restore can spin for ever on a tar cut short
        child.kill('SIGKILL')
      })
  }
  try {
    const [, exit] = await Promise.all([piped, exited])
    clearTimeout(stuckTimer)
    if (signal?.aborted) throw new PgkeepError('CANCELLED', 'validation cancelled')
    const broken = codecFailure !== undefined || sniffFailure !== undefined || readFailure !== undefined || exit.code !== 0
    const cause = input && broken ? await readCause() : undefined
    // bytes that do not decrypt are what is wrong, before anything said about what they did not turn into
    if (cause && input?.decoders[0]?.label === 'age') return { ok: false, message: cause }
    if (sniffFailure) return { ok: false, message: sniffFailure }
    codecFailure ??= cause
    if (codecFailure) return { ok: false, message: codecFailure }
    if (readFailure) return { ok: false, message: `read failed: ${readFailure}` }
    if (stuckAfterEof) return { ok: false, message: `pg_restore did not finish within ${eofGraceMs / 1000} s of the end of its input (a truncated archive?)` }
    const errors = errorLines(stderr)
    if (exit.code !== 0 || errors.length > 0) {
      const last = stderr.trim().split('\n').at(-1)?.trim()
      const why = errors.length > 0 ? errors.slice(-3).join('; ') : `pg_restore exited with ${exit.code ?? exit.signal}${last ? `: ${last}` : ''}`
      return { ok: false, message: why }
    }
    return { ok: true }
  } finally {
    clearTimeout(stuckTimer)
    signal?.removeEventListener('abort', onAbort)
  }
}

const PLAIN_HEADER = '--\n-- PostgreSQL database dump\n--'
const PLAIN_TRAILER = '-- PostgreSQL database dump complete'
/** pg_dumpall's (a set's globals member): the same shape, its own words */
const CLUSTER_HEADER = '--\n-- PostgreSQL database cluster dump\n--'
const CLUSTER_TRAILER = '-- PostgreSQL database cluster dump complete'
const KEEP = 8192

/**
 * pg_dump's plain output ends with the "complete" comment block, then (15.14+/16.10+) a
 * `\unrestrict <key>` line matching the `\restrict <key>` near the top; only blank lines may follow.
 * pg_dumpall leaves restricted mode before the databases it would dump, so in its output (a set's globals) the
 * `\unrestrict` line comes just before the "cluster dump complete" block instead.
 */
export function checkPlainText (head: string, tail: string): CheckOutcome {
  if (head.startsWith('PGDMP')) return { ok: false, message: 'not a plain SQL dump (it is a pg_dump custom archive)' }
  const cluster = head.startsWith(CLUSTER_HEADER)
  if (!cluster && !head.startsWith(PLAIN_HEADER)) return { ok: false, message: 'not a plain SQL dump: missing "-- PostgreSQL database dump" header' }
  const trailer = cluster ? CLUSTER_TRAILER : PLAIN_TRAILER
  const restrictKey = /^\\restrict (\S+)$/m.exec(head)?.[1]
  const lines = tail.split('\n')
  const popBlank = (): void => { while (lines.length > 0 && lines.at(-1)!.trim() === '') lines.pop() }
  popBlank()
  let unrestrict = /^\\unrestrict (\S+)$/.exec(lines.at(-1) ?? '')
  if (unrestrict) { lines.pop(); popBlank() }
  if (lines.at(-1) === '--') lines.pop()
  if (lines.at(-1) !== trailer) return { ok: false, message: `missing "${trailer}" trailer` }
  if (cluster && unrestrict === null) {
    lines.pop()
    if (lines.at(-1) === '--') lines.pop()
    popBlank()
    unrestrict = /^\\unrestrict (\S+)$/.exec(lines.at(-1) ?? '')
  }
  if (restrictKey !== undefined && unrestrict?.[1] !== restrictKey) {
    return { ok: false, message: 'missing the "\\unrestrict" line matching the dump\'s "\\restrict" key' }
  }
  return { ok: true }
}

/** Keeps only the first and last 8 KiB of a plain SQL stream: what checkPlainText needs, whatever its size. */
export function plainCollector (): { sink: Writable, outcome: () => CheckOutcome } {
  let head: Buffer = Buffer.alloc(0)
  let tail: Buffer = Buffer.alloc(0)
  const sink = new Writable({
    highWaterMark: 1024 * 1024,
    write (chunk: Buffer, _enc, cb) {
      if (head.length < KEEP) head = Buffer.concat([head, chunk.subarray(0, KEEP - head.length)])
      tail = chunk.length >= KEEP ? Buffer.from(chunk.subarray(chunk.length - KEEP)) : Buffer.concat([tail, chunk]).subarray(-KEEP)
      cb()
    },
  })
  return { sink, outcome: () => checkPlainText(head.toString('utf8'), tail.toString('utf8')) }
}

export async function checkPlainFile (input: StreamInput, signal?: AbortSignal): Promise<CheckOutcome> {
  const { sink: collect, outcome } = plainCollector()
  let codecFailure: string | undefined
  const decode = decodeStages(input, m => { codecFailure ??= m })
  const onAbort = (): void => decode.kill()
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    await (pipeline as (...s: unknown[]) => Promise<void>)(input.source, ...decode.streams, collect, { signal })
  } catch (err) {
    if (signal?.aborted) throw new PgkeepError('CANCELLED', 'validation cancelled')
    const cause = await decoderVerdict(decode)
    return { ok: false, message: cause ?? codecFailure ?? `read failed: ${(err as Error).message}` }
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
  return outcome()
}

import { execFile } from 'node:child_process'
import { closeSync, constants, createReadStream, createWriteStream, openSync, type ReadStream, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import type { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import type { BackupFormat } from '../../../schemas/backup.ts'
import { PgkeepError } from '../../errors.ts'
import { feedChild } from '../pg/child-feed.ts'
import { childEnv, describeExit } from '../pg/child-process.ts'
import type { ChildStageSpec } from '../pg/child-stage.ts'
import { findCoreutil, findPgTool } from '../pg/tools.ts'
import { EOF_GRACE_MS, plainCollector, runPgRestoreCheck, type CheckOutcome } from './archive-check.ts'

const run = promisify(execFile)

/** What an inline verification records: the check, named like validate's, said to have run on the way in. */
export function inlineMethod (format: BackupFormat): string {
  return format === 'plain' ? 'inline:sql-trailer' : 'inline:pg_restore'
}

/**
 * verify: inline. The structural check of `validate` run on pg_dump's bytes while they are written: pg_restore
 * renders the archive to /dev/null (plain SQL: its header and trailer are checked) reading a FIFO that gets a
 * copy of the raw stream, from `tee` beside the compressor (its bytes never pass through node) or from node
 * when the codec runs in node (gzip, none). It proves that what pg_dump wrote is a complete archive whose every
 * data block reads back; the stored bytes' checksum is taken on the same pass. What it does not prove, and
 * `after` does: that the store gives back those bytes (a read of what landed).
 */
export interface InlineCheck {
  /** the FIFO the raw archive goes into */
  readonly fifo: string
  /** the verdict; ask for it once the raw stream has ended (`inputEnded`) */
  readonly verdict: Promise<CheckOutcome>
  /** for raw bytes that pass through node: a Writable into the FIFO that never fails the dump (a reader done early is drained) */
  tap: () => Writable
  /** `tee -p FIFO` as a stage ahead of the compressor: the copy made in the kernel, and a reader gone early is not an error */
  teeSpec: () => Promise<ChildStageSpec>
  /** the raw stream has ended: a pg_restore still reading after EOF_GRACE_MS is stuck (it spins on some cut tars) */
  inputEnded: () => void
  /**
   * stops the check and releases anyone blocked opening the FIFO; resolves once no open of node's is pending
   * (before the job's directory, and the FIFO with it, goes). Safe to call more than once.
   */
  kill: () => Promise<void>
}

/** Opening a FIFO blocks until the other end opens: whoever waits (a writer whose reader died, or the reverse) is let go. */
function releaseFifo (fifo: string): void {
  try {
    const r = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
    try { closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)) } catch {} finally { closeSync(r) }
  } catch {
    // already gone with the job's directory
  }
}

/**
 * node's own opens of the FIFO run on the libuv thread pool and block there until the other end opens. One that
 * was still queued when the FIFO was released would block for good (and keep the process alive): the release is
 * repeated until every such open has happened.
 */
function fifoOpens (): { track: <S extends ReadStream | WriteStream>(stream: S) => S, settled: () => boolean } {
  let pending = 0
  return {
    track: (stream) => {
      pending++
      let done = false
      const settle = (): void => { if (!done) { done = true; pending-- } }
      const events = stream as NodeJS.EventEmitter
      events.once('open', settle).once('close', settle).once('error', settle)
      return stream
    },
    settled: () => pending === 0,
  }
}

const RELEASE_EVERY_MS = 20
const RELEASE_FOR_MS = 10_000

export async function startInlineCheck (format: Exclude<BackupFormat, 'directory'>, dir: string, pgBinDir?: string): Promise<InlineCheck> {
  const fifo = join(dir, 'inline-check.fifo')
  await run(await findCoreutil('mkfifo'), ['-m', '600', fifo], { env: childEnv() })
  const opens = fifoOpens()
  const stop = new AbortController()
  let stuck = false
  let graceTimer: NodeJS.Timeout | undefined
  let verdict: Promise<CheckOutcome>
  if (format === 'plain') {
    const collector = plainCollector()
    verdict = pipeline(opens.track(createReadStream(fifo, { highWaterMark: 1024 * 1024 })), collector.sink, { signal: stop.signal })
      .then(() => collector.outcome(), (err: unknown) => ({ ok: false, message: stuck ? 'the check did not finish' : `the raw stream could not be read: ${(err as Error).message}` }))
  } else {
    const pgRestore = await findPgTool('pg_restore', pgBinDir)
    verdict = runPgRestoreCheck(pgRestore.path, ['-f', '/dev/null', '-F', format === 'custom' ? 'c' : 't', fifo], undefined, stop.signal)
      .catch((err: unknown) => ({
        ok: false,
        message: stuck ? `pg_restore did not finish within ${EOF_GRACE_MS / 1000} s of the end of the dump (a truncated archive?)` : (err as Error).message,
      }))
  }
  // a verdict can come before the end of the input is reported (pg_restore stops reading at the archive's end):
  // the grace timer must not be armed after it, or it holds the process open for EOF_GRACE_MS for nothing
  let settled = false
  verdict = verdict.finally(() => { settled = true; clearTimeout(graceTimer) })
  let released: Promise<void> | undefined
  // node's own write ends of the FIFO: while one is open, a read of node's on the other end never sees EOF and
  // blocks on the thread pool, keeping the process alive after a dump that stopped without ending its tap
  const taps: WriteStream[] = []
  const kill = async (): Promise<void> => {
    stop.abort()
    for (const t of taps) t.destroy()
    released ??= (async () => {
      const until = Date.now() + RELEASE_FOR_MS
      releaseFifo(fifo)
      while (!opens.settled() && Date.now() < until) {
        await sleep(RELEASE_EVERY_MS)
        releaseFifo(fifo)
      }
    })()
    await released
  }
  return {
    fifo,
    verdict,
    tap: () => {
      const end = opens.track(createWriteStream(fifo, { highWaterMark: 1024 * 1024 }))
      taps.push(end)
      return feedChild(end, { drainAfterClose: true })
    },
    teeSpec: async () => ({
      program: 'tee',
      path: await findCoreutil('tee'),
      // -p: a reader gone early (pg_restore is done with a tar before its padding) must not cut the stored copy
      args: ['-p', fifo],
      env: childEnv(),
      describeFailure: ({ pid, code, signal, stderr }) => {
        const why = stderr.trim().split('\n').at(-1)
        return new PgkeepError('INTERNAL', `tee (pid ${pid}), copying the dump to its inline check, ${describeExit(code, signal)}${why ? `: ${why}` : ''}`)
      },
    }),
    inputEnded: () => {
      if (!settled) graceTimer ??= setTimeout(() => { stuck = true; void kill() }, EOF_GRACE_MS)
    },
    kill,
  }
}

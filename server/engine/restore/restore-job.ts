import type { ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { createReadStream } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { uuidv7 } from 'uuidv7'
import type { Backup, RestoreRequest } from '../../../schemas/backup.ts'
import type { Target } from '../../config.ts'
import { ChildStoppedReading, feedChild } from '../pg/child-feed.ts'
import { createDecompressor, type CodecStage } from '../pg/codec.ts'
import { IntegrityError, InvalidStateError, NotFoundError, PgkeepError, toPgkeepError } from '../../errors.ts'
import { spawnChild } from '../pg/child-process.ts'
import { prepareChildEnv, type ChildPgEnv } from '../pg/passfile.ts'
import { findPgTool } from '../pg/tools.ts'
import { buildRestoreCommand, classifyRestoreFailure, parseRestoreLine, type RestoreCommand } from './command.ts'
import { prepareDatabase, stopBackends } from './database.ts'
import { ItemProgress, RestoreProgressMeter } from './progress.ts'

export type { RestoreProgress } from '../../../schemas/restore.ts'

export interface RestoreResult { ok: true, durationMs: number }

/** events: 'progress' (RestoreProgress), 'log' (line: string), 'status' ('running' | 'completed' | 'failed' | 'cancelled') */
export interface RestoreJob extends EventEmitter {
  /** a UUIDv7 */
  id: string
  /** rejects with PgkeepError: PG_RESTORE_FAILED, CANCELLED, PG_AUTH_FAILED, PG_CONNECTION_FAILED, CONFLICT, INTEGRITY_FAILED */
  done: Promise<RestoreResult>
  cancel: () => Promise<void>
}

export interface RestoreOptions { pgBinDir?: string, cancelGraceMs?: number }

const STDERR_TAIL = 40

async function backupSize (path: string, isDirectory: boolean): Promise<number> {
  try {
    if (!isDirectory) return (await stat(path)).size
    let total = 0
    for (const name of await readdir(path)) total += (await stat(join(path, name))).size
    return total
  } catch {
    throw new NotFoundError(`backup file ${path}`)
  }
}

class RestoreRun extends EventEmitter implements RestoreJob {
  readonly id = uuidv7()
  readonly done: Promise<RestoreResult>
  private readonly appName = `pgkeep-restore-${this.id}`
  private readonly graceMs: number
  private cancelling: Promise<void> | undefined
  private child: ChildProcess | undefined
  private codec: CodecStage | undefined
  private childExited: Promise<unknown> = Promise.resolve()
  private settled = false

  constructor (
    private readonly backup: Backup,
    private readonly backupDir: string,
    private readonly target: Target,
    private readonly req: RestoreRequest,
    private readonly opts: RestoreOptions,
  ) {
    super()
    this.graceMs = opts.cancelGraceMs ?? 5000
    this.done = this.run().then(
      result => { this.settled = true; this.emit('status', 'completed'); return result },
      (err: unknown) => { this.settled = true; this.emit('status', this.cancelled ? 'cancelled' : 'failed'); throw err },
    )
    // the caller may only ever look at events; an unobserved failure must not crash the process
    this.done.catch(() => {})
  }

  private get cancelled (): boolean { return this.cancelling !== undefined }

  private scrub (text: string): string {
    const pw = this.target.password
    return pw ? text.split(pw).join('***') : text
  }

  private checkCancelled (): void {
    if (this.cancelled) throw new PgkeepError('CANCELLED', `restore of ${this.backup.name} was cancelled`)
  }

  private async run (): Promise<RestoreResult> {
    const started = Date.now()
    const path = join(this.backupDir, this.backup.name)
    const plain = this.backup.format === 'plain'
    let env: ChildPgEnv | undefined
    try {
      const tool = await findPgTool(plain ? 'psql' : 'pg_restore', this.opts.pgBinDir)
      const totalBytes = await backupSize(path, this.backup.format === 'directory')
      // a cut file is the common damage, and pg_restore spins for ever on a truncated tar: refuse it up front
      if (this.backup.sizeBytes !== undefined && totalBytes !== this.backup.sizeBytes) {
        throw new IntegrityError(`the backup ${this.backup.name} is ${totalBytes} bytes on disk but ${this.backup.sizeBytes} were written; run validate on it`)
      }
      env = await prepareChildEnv(this.target, this.appName, this.backupDir)
      this.checkCancelled()
      const { fresh } = await prepareDatabase(this.target, this.req.database, { create: this.req.create === true, clean: this.req.clean === true, plain })
      this.checkCancelled()
      this.emit('status', 'running')
      const cmd = buildRestoreCommand(this.backup, path, env.connArgs(this.req.database), this.req, fresh)
      if ((this.req.jobs ?? 1) > 1 && !cmd.parallel) {
        this.emit('log', `pgkeep: restoring with one job: -j needs a directory backup or an uncompressed custom file (this is ${this.backup.format}/${this.backup.compression})`)
      }
      const meter = new RestoreProgressMeter(totalBytes, p => this.emit('progress', p))
      const items = cmd.stdinFile === undefined
        ? await ItemProgress.load(tool.path, path, this.backup.format === 'directory' ? 'directory' : 'custom', totalBytes, cmd.parallel, env.env)
        : undefined
      await this.runTool(tool.path, cmd, env.env, meter, items)
      meter.finish()
      return { ok: true, durationMs: Date.now() - started }
    } catch (err) {
      if (this.cancelled) throw new PgkeepError('CANCELLED', `restore of ${this.backup.name} was cancelled`)
      const e = toPgkeepError(err)
      const message = this.scrub(e.message)
      throw message === e.message ? e : new PgkeepError(e.code, message, { details: e.details })
    } finally {
      await env?.dispose()
    }
  }

  private async runTool (toolPath: string, cmd: RestoreCommand, env: NodeJS.ProcessEnv, meter: RestoreProgressMeter, items?: ItemProgress): Promise<void> {
    const child = spawnChild(toolPath, cmd.args, { env, stdio: [cmd.stdinFile ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
    this.child = child
    if (this.cancelled) child.kill('SIGTERM')
    const exited = new Promise<{ code: number | null }>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', code => resolve({ code }))
    })
    this.childExited = exited.catch(() => {})
    child.stdout!.resume()
    const tail: string[] = []
    createInterface({ input: child.stderr!, crlfDelay: Infinity }).on('line', line => {
      tail.push(line)
      if (tail.length > STDERR_TAIL) tail.shift()
      this.emit('log', this.scrub(line))
      const parsed = parseRestoreLine(line)
      if (!parsed) return
      meter.update(items?.onLine(parsed), parsed.kind === 'data' ? parsed.table : parsed.item)
    })

    let readFailure: unknown
    let fed: Promise<void> = Promise.resolve()
    if (cmd.stdinFile) {
      this.codec = await createDecompressor(this.backup.compression)
      if (this.cancelled) this.codec.kill()
      const counter = new Transform({ transform (chunk: Buffer, _enc, cb) { meter.add(chunk.length); cb(null, chunk) } })
      fed = pipeline(createReadStream(cmd.stdinFile, { highWaterMark: 1024 * 1024 }), counter, this.codec.stream,
        feedChild(child.stdin!, { drainAfterClose: false }))
        .catch((err: unknown) => {
          // the child quitting early is explained by its own exit status; anything else is a broken backup file
          if (!(err instanceof ChildStoppedReading)) {
            readFailure = err
            // the restore has failed already, and pg_restore can spin for ever on a tar cut short
            child.kill('SIGKILL')
          }
          child.stdin!.destroy()
        })
    }
    const [{ code }] = await Promise.all([exited, fed])
    this.checkCancelled()
    if (readFailure !== undefined && !(code === 0 && isBrokenPipe(readFailure))) {
      const why = (readFailure as Error)?.message ?? String(readFailure)
      throw new PgkeepError('INTEGRITY_FAILED', `the backup ${this.backup.name} could not be read to the end (${why}); run validate on it`)
    }
    if (code !== 0) throw classifyRestoreFailure(cmd.tool, tail, code, s => this.scrub(s))
  }

  cancel (): Promise<void> {
    if (this.settled) return Promise.resolve()
    this.cancelling ??= this.stop()
    return this.cancelling
  }

  /** SIGTERM, SIGKILL after the grace period, then make sure no server backend keeps working for us. */
  private async stop (): Promise<void> {
    const child = this.child
    this.codec?.kill('SIGTERM')
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const killer = setTimeout(() => { child.kill('SIGKILL'); this.codec?.kill('SIGKILL') }, this.graceMs)
      await this.childExited
      clearTimeout(killer)
    }
    await stopBackends(this.target, this.req.database, this.appName, this.graceMs).catch(() => {})
    await this.done.catch(() => {})
  }
}

// kept where the restore tests import it from; the rule lives with the other connection arguments
export { dbnameConninfo } from '../pg/passfile.ts'

function isBrokenPipe (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_PREMATURE_CLOSE'
}

/**
 * Restores a completed backup into req.database on `target`. The returned job emits
 * 'progress' (bytes of the backup read / its size) and every tool stderr line as 'log'.
 */
export function startRestore (backup: Backup, backupDir: string, target: Target, req: RestoreRequest, opts: RestoreOptions = {}): RestoreJob {
  if (backup.status !== 'completed') throw new InvalidStateError(`backup ${backup.name} is ${backup.status}; only completed backups can be restored`)
  return new RestoreRun(backup, backupDir, target, req, opts)
}

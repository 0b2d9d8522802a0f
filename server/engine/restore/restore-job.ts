import type { ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { uuidv7 } from 'uuidv7'
import type { Backup, RestoreRequest } from '../../../schemas/backup.ts'
import type { Target } from '../../config.ts'
import { ChildStoppedReading, feedChild } from '../pg/child-feed.ts'
import type { CodecStage } from '../pg/codec.ts'
import { firstStageFailure } from '../pg/backup-codec.ts'
import { backupBytes, type BackupBytes } from '../storage/backup-bytes.ts'
import type { Storage } from '../storage/storage.ts'
import { IntegrityError, InvalidStateError, NotFoundError, PgkeepError, toPgkeepError } from '../../errors.ts'
import { spawnChild } from '../pg/child-process.ts'
import { prepareChildEnv, type ChildPgEnv } from '../pg/passfile.ts'
import { findPgTool } from '../pg/tools.ts'
import type { RestoreRecord } from '../store/restore-records.ts'
import { buildRestoreCommand, classifyRestoreFailure, parseRestoreLine, type RestoreCommand } from './command.ts'
import { applyDatabaseStatements, createDatabase, dropDatabase, inspectDestination, quoteIdent, stopBackends, swapIn } from './database.ts'
import { fitCreateOptions, readDatabaseLevel } from './database-level.ts'
import { planRestore, type RestorePlan } from './plan.ts'
import { ItemProgress, RestoreProgressMeter } from './progress.ts'

export type { RestoreProgress } from '../../../schemas/restore.ts'
export type { RestorePlan } from './plan.ts'

export interface RestoreResult {
  ok: true
  durationMs: number
  mode: RestorePlan['mode']
  /** `replace`: the database that was there before is gone (dropped after the swap) */
  replaced: boolean
}

/** events: 'progress' (RestoreProgress), 'log' (line: string), 'status' ('running' | 'completed' | 'failed' | 'cancelled') */
export interface RestoreJob extends EventEmitter {
  /** a UUIDv7 */
  id: string
  /** how the restore writes, once the destination was looked at; rejects with the refusal (TARGET_NOT_EMPTY, NOT_FOUND, CONFLICT...) */
  planned: Promise<RestorePlan>
  /** rejects with PgkeepError: PG_RESTORE_FAILED, CANCELLED, PG_AUTH_FAILED, PG_CONNECTION_FAILED, CONFLICT, INTEGRITY_FAILED, TARGET_NOT_EMPTY */
  done: Promise<RestoreResult>
  cancel: () => Promise<void>
}

export interface RestoreOptions {
  pgBinDir?: string
  cancelGraceMs?: number
  /** records the restore before every step that creates, renames or drops a database (store/restore-records.ts) */
  journal?: (record: RestoreRecord) => Promise<void>
  /** the age identity (private key file) that opens an encrypted backup */
  identityFile?: string
}

const STDERR_TAIL = 40

async function backupSize (backup: Backup, storage: Storage, bytes: BackupBytes): Promise<number> {
  if (backup.format === 'directory') {
    try {
      let total = 0
      for (const name of await readdir(bytes.path as string)) total += (await stat(join(bytes.path as string, name))).size
      return total
    } catch {
      throw new NotFoundError(`backup directory ${bytes.path}`)
    }
  }
  const st = await storage.stat(backup.name)
  if (st === undefined) throw new NotFoundError(`backup file ${backup.name} in ${storage.url}`)
  return st.sizeBytes
}

class RestoreRun extends EventEmitter implements RestoreJob {
  readonly id = uuidv7()
  readonly done: Promise<RestoreResult>
  readonly planned: Promise<RestorePlan>
  private settlePlan!: { resolve: (p: RestorePlan) => void, reject: (e: unknown) => void }
  private readonly appName = `pgkeep-restore-${this.id}`
  private readonly graceMs: number
  private cancelling: Promise<void> | undefined
  private child: ChildProcess | undefined
  private codecs: CodecStage[] = []
  private childExited: Promise<unknown> = Promise.resolve()
  private settled = false
  /** from the swap on, the restore is as good as done: a cancel no longer stops it */
  private swapping = false
  private record: RestoreRecord | undefined
  /** the destination server's, from planning: the dumped CREATE DATABASE is fitted to it */
  private serverVersionNum = 0
  private meter: RestoreProgressMeter | undefined

  constructor (
    private readonly backup: Backup,
    private readonly storage: Storage,
    private readonly bytes: BackupBytes,
    private readonly backupDir: string,
    private readonly target: Target,
    private readonly req: RestoreRequest,
    private readonly opts: RestoreOptions,
  ) {
    super()
    this.graceMs = opts.cancelGraceMs ?? 5000
    this.planned = new Promise((resolve, reject) => { this.settlePlan = { resolve, reject } })
    this.planned.catch(() => {})
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

  private async journal (fields: Partial<RestoreRecord>): Promise<void> {
    if (!this.record) return
    this.record = { ...this.record, ...fields }
    await this.opts.journal?.(this.record)
  }

  private async plan (): Promise<RestorePlan> {
    try {
      const destination = await inspectDestination(this.target, this.req.database)
      this.serverVersionNum = destination.serverVersionNum
      const plan = planRestore(this.id, this.req, destination, this.target)
      this.settlePlan.resolve(plan)
      return plan
    } catch (err) {
      this.settlePlan.reject(err)
      throw err
    }
  }

  private async run (): Promise<RestoreResult> {
    const started = Date.now()
    const plain = this.backup.format === 'plain'
    let env: ChildPgEnv | undefined
    let plan: RestorePlan | undefined
    let scratchOid: number | undefined
    let creating = false
    let swapped = false
    try {
      plan = await this.plan()
      this.checkCancelled()
      const tool = await findPgTool(plain ? 'psql' : 'pg_restore', this.opts.pgBinDir)
      const totalBytes = await backupSize(this.backup, this.storage, this.bytes)
      // a cut file is the common damage, and pg_restore spins for ever on a truncated tar: refuse it up front
      if (this.backup.sizeBytes !== undefined && totalBytes !== this.backup.sizeBytes) {
        throw new IntegrityError(`the backup ${this.backup.name} is ${totalBytes} bytes on disk but ${this.backup.sizeBytes} were written; run validate on it`)
      }
      env = await prepareChildEnv(this.target, this.appName, this.backupDir)
      this.checkCancelled()
      this.record = {
        id: this.id, backupId: this.backup.id, target: this.target.name, database: plan.database, mode: plan.mode,
        ...(plan.scratch ? { scratch: plan.scratch } : {}), ...(plan.old ? { old: plan.old } : {}),
        ...(plan.existingOid !== undefined ? { existingOid: plan.existingOid } : {}),
        status: 'running', ownerPid: process.pid, startedAt: new Date(started).toISOString(),
      }
      await this.journal({})
      if (plan.mode === 'into') {
        this.emit('status', 'running')
        await this.fill(tool.path, env, plan.database, totalBytes, true)
      } else {
        const scratch = plan.scratch!
        const level = plain ? undefined : await readDatabaseLevel(tool.path, this.backup, this.bytes, env.env)
        this.checkCancelled()
        creating = true
        const create = level?.create
        scratchOid = await createDatabase(this.target, scratch, create && (q => fitCreateOptions(create(q), this.serverVersionNum)))
        await this.journal({ scratchOid })
        this.emit('status', 'running')
        await this.fill(tool.path, env, scratch, totalBytes, false)
        await applyDatabaseStatements(this.target, scratch, level?.statements(quoteIdent(scratch)) ?? [])
        this.checkCancelled()
        this.swapping = true
        await swapIn(this.target, { database: plan.database, scratch, old: plan.old })
        swapped = true
        if (plan.old) await this.dropOrRemember(plan.old, plan.existingOid)
      }
      this.meter?.finish()
      await this.journal({ status: 'completed', endedAt: new Date().toISOString() }).catch(() => {})
      return { ok: true, durationMs: Date.now() - started, mode: plan.mode, replaced: plan.mode === 'replace' }
    } catch (err) {
      // the scratch database is ours alone: a failed or cancelled restore leaves nothing behind under any name
      // (by name alone when its oid is unknown: the name carries this restore's id, nobody else uses it)
      if (plan?.scratch && creating && !swapped) await this.dropOrRemember(plan.scratch, scratchOid)
      const e = this.cancelled && !swapped ? new PgkeepError('CANCELLED', `restore of ${this.backup.name} was cancelled`) : toPgkeepError(err)
      const message = this.scrub(e.message)
      const final = message === e.message ? e : new PgkeepError(e.code, message, { details: e.details })
      await this.journal({ status: e.code === 'CANCELLED' ? 'cancelled' : 'failed', error: { code: final.code, message: final.message }, endedAt: new Date().toISOString() }).catch(() => {})
      throw final
    } finally {
      await env?.dispose()
    }
  }

  /** Drops a database this restore made; when that fails the record keeps its name so the next start tries again. */
  private async dropOrRemember (name: string, oid: number | undefined): Promise<void> {
    try {
      await dropDatabase(this.target, name, { oid })
    } catch (err) {
      this.emit('log', this.scrub(`pgkeep: could not drop database "${name}" (${(err as Error).message}); it is dropped at the next start`))
      await this.journal({ leftovers: [...(this.record?.leftovers ?? []), name] }).catch(() => {})
    }
  }

  /** Runs pg_restore or psql into `db`. */
  private async fill (toolPath: string, env: ChildPgEnv, db: string, totalBytes: number, singleTransaction: boolean): Promise<void> {
    const path = this.bytes.path
    const cmd = buildRestoreCommand(this.backup, path, env.connArgs(db), this.req, { singleTransaction })
    if ((this.req.jobs ?? 1) > 1 && !cmd.parallel) {
      const why = singleTransaction
        ? 'a restore into an existing database runs in one transaction'
        : path === undefined
          ? `-j needs a file pg_restore can seek in, and this backup is ${this.backup.encryption ? 'encrypted' : `in ${this.storage.url}`}`
          : `-j needs a directory backup or an uncompressed custom file (this is ${this.backup.format}/${this.backup.compression})`
      this.emit('log', `pgkeep: restoring with one job: ${why}`)
    }
    this.meter = new RestoreProgressMeter(totalBytes, p => this.emit('progress', p))
    const items = !cmd.viaStdin && path !== undefined
      ? await ItemProgress.load(toolPath, path, this.backup.format === 'directory' ? 'directory' : 'custom', totalBytes, cmd.parallel, env.env)
      : undefined
    await this.runTool(toolPath, cmd, env.env, this.meter, items)
  }

  private async runTool (toolPath: string, cmd: RestoreCommand, env: NodeJS.ProcessEnv, meter: RestoreProgressMeter, items?: ItemProgress): Promise<void> {
    const child = spawnChild(toolPath, cmd.args, { env, stdio: [cmd.viaStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
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
    if (cmd.viaStdin) {
      const decoders = await this.bytes.decoders()
      this.codecs = decoders.map(d => d.stage)
      if (this.cancelled) for (const c of this.codecs) c.kill()
      const counter = new Transform({ transform (chunk: Buffer, _enc, cb) { meter.add(chunk.length); cb(null, chunk) } })
      fed = (pipeline as (...s: unknown[]) => Promise<void>)(await this.bytes.open(), counter, ...this.codecs.map(c => c.stream),
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
    // a key that does not open the backup, or bytes that do not decrypt, are the cause of whatever broke after
    const cause = readFailure !== undefined || code !== 0 ? await firstStageFailure(this.codecs) : undefined
    if (cause?.code === 'CONFIG_INVALID' || cause?.code === 'INTEGRITY_FAILED') throw cause
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
    if (this.swapping) { await this.done.catch(() => {}); return }
    const child = this.child
    for (const c of this.codecs) c.kill('SIGTERM')
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const killer = setTimeout(() => { child.kill('SIGKILL'); for (const c of this.codecs) c.kill('SIGKILL') }, this.graceMs)
      await this.childExited
      clearTimeout(killer)
    }
    await stopBackends(this.target, this.req.database, this.appName, this.graceMs).catch(() => {})
    await this.done.catch(() => {})
  }
}

function isBrokenPipe (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_PREMATURE_CLOSE'
}

/**
 * Restores a completed backup into req.database on `target`. The returned job emits
 * 'progress' (bytes of the backup read / its size) and every tool stderr line as 'log'.
 */
export function startRestore (backup: Backup, storage: Storage, backupDir: string, target: Target, req: RestoreRequest, opts: RestoreOptions = {}): RestoreJob {
  if (backup.status !== 'completed') throw new InvalidStateError(`backup ${backup.name} is ${backup.status}; only completed backups can be restored`)
  // an encrypted backup without a key is refused here, before anything is planned or written
  const bytes = backupBytes(backup, storage, opts.identityFile)
  return new RestoreRun(backup, storage, bytes, backupDir, target, req, opts)
}

import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Backup, BackupFormat, Progress, StoredCopy, TableRowCount, Verification } from '../../../schemas/backup.ts'
import { inlineMethod, startInlineCheck, type InlineCheck } from '../verify/inline-check.ts'
import { prepareEncodingRoute, type EncodingRoute } from './encoding-route.ts'
import { watchXminHorizon } from '../pg/xmin-watch.ts'
import type { ObjectWriter, Storage } from '../storage/storage.ts'
import type { Target } from '../../config.ts'
import { IntegrityError, PgkeepError, toPgkeepError } from '../../errors.ts'
import { prepareChildEnv, type ChildPgEnv } from '../pg/passfile.ts'
import { cancelBackends, checkDumpCompatible, createCopyProgressPoller, inspectTarget, lockHolders, type TargetFacts } from '../pg/inspector.ts'
import { findPgTool, type PgTool } from '../pg/tools.ts'
import { toolVersionsFile } from '../pg/tool-versions.ts'
import { withRetry, type RetryPolicy } from '../retry.ts'
import { digestOfFiles, type ManifestFile } from '../store/manifest.ts'
import { buildPgDumpArgs, classifyPgFailure, parseDumpingTable, spawnPgDump, type PgDumpExit, type PgDumpRun } from './pg-dump-process.ts'
import { hashDirectory, removePartial, runDumpPipeline, type PipelineResult } from './pipeline.ts'
import { hashLandingFile } from './landing-file.ts'
import type { Readable, Writable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { ProgressFeed } from './progress-feed.ts'
import { commitLocalPartial } from '../storage/local-storage.ts'
import { startSnapshotCount, type SnapshotCount } from './row-counts.ts'

export type ProgressFields = Omit<Progress, 'backupId'>

export interface DumpJobContext {
  backup: Backup
  target: Target
  /** pgkeep's own state (passfiles) */
  backupDir: string
  /** where the dump is written: the primary store first, then the copies, all at once */
  storages: Storage[]

  pgBinDir?: string
  cancelGraceMs: number
  retry: RetryPolicy
  signal: AbortSignal
  /** on every visible change; the final one has percent 100 */
  onProgress: (p: ProgressFields) => void
  onLog: (line: string) => void
  /** advice while the dump runs (XMIN_HELD): it goes on */
  onWarning?: (code: string, message: string) => void
  /** facts learned before the first byte, for the record that ends the job */
  onStarted: (facts: { pgServerVersion: string, pgDumpVersion: string, tablesCount: number }) => Promise<void>
  /** the dump is complete and fsynced, the checksum known, not yet renamed into place */
  onVerifying: (result: Omit<DumpJobResult, 'files' | 'copies'>) => Promise<void>
}

export interface DumpJobResult {
  files: ManifestFile[]
  sizeBytes: number
  rawBytes: number
  sha256: string
  /** the outcome in each copy store (storages after the first) */
  copies: StoredCopy[]
  /** countRows: each table's rows in the dump's snapshot */
  rowCounts?: TableRowCount[]
  /** verify: inline, passed (a failed check fails the dump) */
  verification?: Verification
}

const COPY_POLL_MS = 500
/**
 * The first COPY sample is taken after a second: most of a short dump is pg_dump reading the catalog, and a dump
 * that ends sooner needs no progress connection at all (each one is a server fork and an authentication).
 */
const FIRST_COPY_POLL_MS = 1000
const DEFAULT_XMIN_WARNING_MINUTES = 60

/** One copy store's write during a dump: its writer, or why it could not start or went wrong. */
interface CopyWrite { storage: Storage, writer?: ObjectWriter, failure?: PgkeepError }

export function applicationName (backupId: string): string {
  return `pgkeep-${backupId}`
}

async function directorySize (dir: string): Promise<number> {
  let total = 0
  try {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isFile()) total += (await stat(join(dir, entry.name))).size
    }
  } catch {
    // pg_dump has not created it yet
  }
  return total
}

/**
 * Retrying is safe only before the first byte: a connection lost mid-dump is a failed dump, not a
 * transient failure, and must not silently start over.
 */
function failureAfter (bytesWritten: number, exit: PgDumpExit): PgkeepError {
  const failure = classifyPgFailure(exit.stderrTail, exit.code, exit.signal)
  if (bytesWritten === 0 || !(failure as { retryable?: boolean }).retryable) return failure
  return new PgkeepError('PG_DUMP_FAILED', `pg_dump lost its connection after ${bytesWritten} bytes: ${failure.message}`)
}

/** Why the job's signal fired: a user's cancel, or the target's maxDurationMinutes (the reason it was given). */
function stopped (signal: AbortSignal): PgkeepError {
  if (signal.reason instanceof PgkeepError && signal.reason.code === 'TIMEOUT') return signal.reason
  return new PgkeepError('CANCELLED', 'the backup was cancelled; its partial file was removed')
}

/**
 * The file zstd writes itself, hashed (and flushed) as it lands; node's own stream to it is closed unused (the child
 * holds its own descriptor). Settles once the encoders have all exited and the file was read to its end.
 */
async function readBackDirect (path: string, encoded: Readable, unused: Writable, signal: AbortSignal): Promise<PipelineResult> {
  unused.end()
  const encodersDone = finished(encoded.resume())
  const [read] = await Promise.all([hashLandingFile(path, encodersDone, { signal }), encodersDone])
  return { rawBytes: 0, sizeBytes: read.sizeBytes, sha256: read.sha256, failedOutputs: new Map() }
}

/**
 * Runs one pg_dump from first connection to renamed file. Throws PgkeepError (CANCELLED when the
 * signal fired); on any failure the partial file or directory is gone before it returns.
 */
export async function runDumpJob (ctx: DumpJobContext): Promise<DumpJobResult> {
  return await new DumpJob(ctx).run()
}

/** One dump, in the steps it goes through: inspect, spawn pg_dump, write, commit. */
class DumpJob {
  private readonly partialPath: string
  private readonly finalPath: string
  private readonly appName: string

  constructor (private readonly ctx: DumpJobContext) {
    const primary = ctx.storages[0]
    // only a directory-format dump has paths: pg_dump writes its files itself, on local disk
    const local = primary.localPath?.(ctx.backup.name)
    this.partialPath = local === undefined ? '' : `${local}.partial`
    this.finalPath = local ?? ''
    this.appName = applicationName(ctx.backup.id)
  }

  async run (): Promise<DumpJobResult> {
    const { ctx } = this
    const pgDump = await findPgTool('pg_dump', ctx.pgBinDir, { versionsFile: toolVersionsFile(ctx.backupDir) })
    const facts = await this.inspect(pgDump)
    const env = await prepareChildEnv(ctx.target, this.appName, ctx.backupDir)
    const progress = new ProgressFeed(facts, ctx.onProgress)
    const poller = createCopyProgressPoller(ctx.target, this.appName, COPY_POLL_MS, s => progress.onCopySample(s), { firstPollMs: FIRST_COPY_POLL_MS, serverMajor: facts.serverMajor })
    const xmin = this.watchSnapshotAge()
    try {
      const result = await withRetry(async () => {
        if (this.partialPath) await removePartial(this.partialPath)
        return await this.dumpOnce(pgDump, env, facts, progress)
      }, ctx.retry, { signal: ctx.signal })
      progress.complete()
      return result
    } catch (err) {
      if (this.partialPath) await removePartial(this.partialPath)
      if (ctx.signal.aborted) throw stopped(ctx.signal)
      throw await this.namingLockHolders(toPgkeepError(err))
    } finally {
      progress.stop()
      xmin?.stop()
      await poller.stop()
      await env.dispose()
    }
  }

  /** The target's xminWarningMinutes (default 60, 0 = off): a dump whose snapshot holds vacuum back that long says so. */
  private watchSnapshotAge (): { stop: () => void } | undefined {
    const minutes = this.ctx.target.xminWarningMinutes ?? DEFAULT_XMIN_WARNING_MINUTES
    if (minutes <= 0 || this.ctx.onWarning === undefined) return undefined
    return watchXminHorizon(this.ctx.target, this.appName, minutes * 60_000, heldMs => {
      const held = heldMs >= 120_000 ? `${Math.round(heldMs / 60_000)} min` : `${Math.round(heldMs / 1000)} s`
      this.ctx.onWarning?.('XMIN_HELD', `this dump's snapshot has held back the xmin horizon of database "${this.ctx.target.database}" for ${held}: ` +
        `VACUUM cannot remove rows deleted or updated since, so tables may bloat until the dump ends (warning after ${minutes} min, the target's xminWarningMinutes)`)
    })
  }

  /**
   * A lock wait that timed out says who held the table: asked right away, while the blocker most likely still
   * holds it (best effort: the failure stands as it is if the question fails).
   */
  private async namingLockHolders (e: PgkeepError): Promise<PgkeepError> {
    if (e.code !== 'LOCK_TIMEOUT') return e
    const relation = e.details?.relation
    const holders = await lockHolders(this.ctx.target, typeof relation === 'string' ? relation : undefined).catch(() => [])
    if (holders.length === 0) return e
    return new PgkeepError('LOCK_TIMEOUT', `${e.message}: ${holders.join('; ')}`, { details: { ...e.details, holders } })
  }

  /** Connection problems surface here, before any byte is written, which is where retrying is safe. */
  private async inspect (pgDump: PgTool): Promise<TargetFacts> {
    const { backup, target, signal } = this.ctx
    const { schemas, excludeTables, schemaOnly, dataOnly } = backup.options
    // a cancel while the size query waits on a lock stops that query; its error is the cancel, not a failure
    const facts = await withRetry(() => inspectTarget(target, { schemas, excludeTables, schemaOnly, dataOnly }, { signal }), this.ctx.retry, { signal })
      .catch(async (err: unknown) => { throw signal.aborted ? stopped(signal) : await this.namingLockHolders(toPgkeepError(err)) })
    if (signal.aborted) throw stopped(signal)
    checkDumpCompatible(pgDump.major, facts.serverMajor)
    await this.ctx.onStarted({ pgServerVersion: facts.serverVersion, pgDumpVersion: pgDump.version, tablesCount: facts.tables.length })
    return facts
  }

  private async dumpOnce (pgDump: PgTool, env: ChildPgEnv, facts: TargetFacts, progress: ProgressFeed): Promise<DumpJobResult> {
    const { options } = this.ctx.backup
    const counting: SnapshotCount | undefined = options.countRows === true && !options.schemaOnly
      ? await startSnapshotCount(this.ctx.target, facts.tables, this.appName)
      : undefined
    try {
      const result = await this.dumpIn(pgDump, env, facts, progress, counting?.snapshot)
      return counting ? { ...result, rowCounts: await counting.counts } : result
    } finally {
      await counting?.close()
    }
  }

  private async dumpIn (pgDump: PgTool, env: ChildPgEnv, facts: TargetFacts, progress: ProgressFeed, snapshot?: string): Promise<DumpJobResult> {
    if (this.ctx.backup.format !== 'directory') return await this.writeSingleFile(pgDump, env, facts, progress, snapshot)
    // refused up front (backup-request.ts) for a store without local paths; this is the last guard
    if (!this.partialPath || this.ctx.storages.length > 1) throw new PgkeepError('INVALID_INPUT', 'a directory-format backup can only be written to a local backups directory, without copies')
    const pgDumpRun = this.spawnPgDump(pgDump, env, facts, progress, snapshot)
    const stopWatching = this.stopOnAbort(pgDumpRun)
    try {
      return await this.writeDirectory(pgDumpRun, progress)
    } finally {
      stopWatching()
    }
  }

  private spawnPgDump (pgDump: PgTool, env: ChildPgEnv, facts: TargetFacts, progress: ProgressFeed, snapshot?: string): PgDumpRun {
    const { backup } = this.ctx
    const args = buildPgDumpArgs({
      format: backup.format,
      compression: backup.compression,
      level: backup.level,
      options: backup.options,
      pgDumpMajor: pgDump.major,
      outputDir: backup.format === 'directory' ? this.partialPath : undefined,
      lockWaitTimeoutSeconds: this.ctx.target.lockWaitTimeoutSeconds,
      ...(snapshot !== undefined ? { snapshot } : {}),
    }, env.connArgs())
    const pgDumpRun = spawnPgDump(pgDump.path, args, env.env)
    // pg_dump prints "schema.table" unquoted; the known names disambiguate a dot inside either part
    const knownTables = facts.tables.map(t => ({ schema: t.schema, table: t.name }))
    pgDumpRun.onLine((line) => {
      this.ctx.onLog(line)
      const table = parseDumpingTable(line, knownTables)
      if (table) progress.onTableStarted(table.schema, table.table)
    })
    return pgDumpRun
  }

  /** Cancel: SIGTERM, SIGKILL after the grace period, and the server backend stopped explicitly. Returns the unsubscribe. */
  private stopOnAbort (pgDumpRun: PgDumpRun): () => void {
    const { signal, target, cancelGraceMs } = this.ctx
    let killTimer: NodeJS.Timeout | undefined
    const onAbort = (): void => {
      pgDumpRun.kill('SIGTERM')
      killTimer = setTimeout(() => pgDumpRun.kill('SIGKILL'), cancelGraceMs)
      // pg_dump's server backend can outlive a killed client for a while: stop it explicitly
      cancelBackends(target, this.appName).catch(() => {})
    }
    signal.addEventListener('abort', onAbort, { once: true })
    return () => {
      signal.removeEventListener('abort', onAbort)
      if (killTimer) clearTimeout(killTimer)
    }
  }

  /**
   * One pg_dump into every store at once. Nothing is published before the dump is complete: a failure or a
   * cancel aborts every unfinished write (partial file, multipart upload). A copy store failing (at the start,
   * on the way or at the commit) only marks that copy failed; the backup goes on in the others.
   */
  private async writeSingleFile (pgDump: PgTool, env: ChildPgEnv, facts: TargetFacts, progress: ProgressFeed, snapshot?: string): Promise<DumpJobResult> {
    const { backup, signal, storages: [primaryStore, ...copyStores] } = this.ctx
    const primary = await primaryStore.createWriter(backup.name, { signal })
    const copies: CopyWrite[] = await Promise.all(copyStores.map(async storage => await storage.createWriter(backup.name, { signal }).then(
      writer => ({ storage, writer }), (err: unknown) => ({ storage, failure: toPgkeepError(err) }))))
    const writing = copies.filter(c => c.writer !== undefined)
    const abortAll = async (): Promise<void> => { await Promise.all([primary, ...writing.map(c => c.writer!)].map(w => w.abort().catch(() => {}))) }
    let check: InlineCheck | undefined
    let route: EncodingRoute | undefined
    let stopWatching = (): void => {}
    try {
      if (backup.options.verify === 'inline') check = await startInlineCheck(backup.format as Exclude<BackupFormat, 'directory'>, env.dir, this.ctx.pgBinDir)
      route = await prepareEncodingRoute({ compression: backup.compression, level: backup.level, recipients: backup.encryption?.recipients, check })
      // one local file and children doing all the encoding: zstd [| age] writes the file itself (bench/dump-options.ts)
      const direct = !route.rawInNode && writing.length === 0 ? primary.direct : undefined
      // pg_dump and its encoders start in one tick: its stdout goes to zstd before node could read a byte of it
      const pgDumpRun = this.spawnPgDump(pgDump, env, facts, progress, snapshot)
      const source = route.start(pgDumpRun.stdout, direct?.fd)
      stopWatching = this.stopOnAbort(pgDumpRun)
      // zstd reads pg_dump's stream itself: the byte count is read from /proc, once per progress report
      if (!route.rawInNode) progress.pace(route.rawSoFar)
      const piped = direct ? readBackDirect(direct.path, source, primary.stream, signal) : runDumpPipeline({
        source,
        compression: backup.compression,
        level: backup.level,
        encoders: route.encoders,
        countRaw: route.rawInNode,
        rawTap: route.rawTap,
        outputs: [primary.stream, ...writing.map(c => c.writer!.stream)],
        onBytes: n => progress.onBytes(n),
        signal,
      })
      // a failed write (disk full, store gone) leaves pg_dump blocked on a full pipe: stop it
      piped.catch(() => pgDumpRun.kill('SIGTERM'))
      const exit = await pgDumpRun.exited
      const outcome = await piped.then(r => ({ ok: true as const, r }), (e: unknown) => ({ ok: false as const, e }))
      progress.unpace()
      if (signal.aborted) throw stopped(signal)
      if (!outcome.ok) throw toPgkeepError(outcome.e)
      const rawBytes = route.rawInNode ? outcome.r.rawBytes : this.rawBytesOf(route, outcome.r.sizeBytes)
      if (exit.code !== 0) throw failureAfter(rawBytes, exit)
      // a check that fails says the archive pg_dump wrote does not read back: nothing is published
      check?.inputEnded()
      const verdict = check ? await check.verdict : undefined
      if (verdict && !verdict.ok) throw new IntegrityError(`the inline verification failed, so the backup was not kept: ${verdict.message ?? 'the archive does not read back'}`)
      progress.onBytes(rawBytes)
      const { sizeBytes, sha256, failedOutputs } = outcome.r
      writing.forEach((c, i) => { c.failure ??= failedOutputs.get(i + 1) })
      await this.ctx.onVerifying({ rawBytes, sizeBytes, sha256 })
      await primary.commit({ sizeBytes })
      const verification = verdict ? { at: new Date().toISOString(), ok: true, method: inlineMethod(backup.format) } : undefined
      return {
        rawBytes, sizeBytes, sha256, files: [{ path: backup.name, sizeBytes, sha256 }],
        copies: await Promise.all(copies.map(async c => await this.finishCopy(c, sizeBytes))),
        ...(verification ? { verification } : {}),
      }
    } catch (err) {
      route?.kill()
      await abortAll()
      throw err
    } finally {
      progress.unpace()
      stopWatching()
      await check?.kill()
    }
  }

  /**
   * The raw byte count when zstd read pg_dump's stream itself: its own report (exact). Its count of what it
   * wrote must be what node stored, or bytes were lost on the way.
   */
  private rawBytesOf (route: EncodingRoute, storedBytes: number): number {
    const count = route.count()
    if (count === undefined) {
      this.ctx.onLog('pgkeep: zstd did not report how many bytes it read; the raw size recorded is the last live count')
      return route.rawSoFar() ?? 0
    }
    if (this.ctx.backup.encryption === undefined && count.written !== storedBytes) {
      throw new IntegrityError(`zstd wrote ${count.written} bytes but ${storedBytes} were stored`)
    }
    return count.read
  }

  /** Publishes one copy (or drops what it wrote) and says how it ended; a copy never fails the backup. */
  private async finishCopy (copy: CopyWrite, sizeBytes: number): Promise<StoredCopy> {
    const failure = copy.failure ?? await copy.writer?.commit({ sizeBytes }).then(() => undefined, toPgkeepError)
    if (failure === undefined) return { storage: copy.storage.url, status: 'completed' }
    await copy.writer?.abort().catch(() => {})
    this.ctx.onLog(`pgkeep: the copy to ${copy.storage.url} failed: ${failure.message}`)
    return { storage: copy.storage.url, status: 'failed', error: { code: failure.code, message: failure.message } }
  }

  private async writeDirectory (pgDumpRun: PgDumpRun, progress: ProgressFeed): Promise<DumpJobResult> {
    const { backup, signal } = this.ctx
    // pg_dump writes the files itself; we can only watch the directory grow
    pgDumpRun.stdout.resume()
    const sizer = setInterval(() => { directorySize(this.partialPath).then(n => progress.onBytes(n), () => {}) }, COPY_POLL_MS)
    let exit
    try {
      exit = await pgDumpRun.exited
    } finally {
      clearInterval(sizer)
    }
    if (signal.aborted) throw stopped(signal)
    if (exit.code !== 0) throw failureAfter(await directorySize(this.partialPath), exit)
    const tree = await hashDirectory(this.partialPath)
    const partialPrefix = `${backup.name}.partial/`
    const files = tree.files.map(f => ({ ...f, path: f.path.startsWith(partialPrefix) ? `${backup.name}/${f.path.slice(partialPrefix.length)}` : f.path }))
    // the directory's checksum covers final paths, so it stays valid after the rename
    const sha256 = digestOfFiles(files)
    const result = { rawBytes: tree.sizeBytes, sizeBytes: tree.sizeBytes, sha256 }
    progress.onBytes(tree.sizeBytes)
    await this.ctx.onVerifying(result)
    await commitLocalPartial(this.partialPath, this.finalPath)
    return { ...result, files, copies: [] }
  }
}

import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Backup, Progress } from '../../../schemas/backup.ts'
import type { Target } from '../../config.ts'
import { PgkeepError, toPgkeepError } from '../../errors.ts'
import { commitPartial, hashDirectory, removePartial, runDumpPipeline } from './pipeline.ts'
import { digestOfFiles, type ManifestFile } from '../store/manifest.ts'
import { prepareChildEnv } from '../pg/passfile.ts'
import { buildPgDumpArgs, classifyPgFailure, parseDumpingTable, spawnPgDump } from './pg-dump-process.ts'
import { findPgTool } from '../pg/tools.ts'
import { ProgressEstimator } from './progress-estimator.ts'
import { withRetry, type RetryPolicy } from '../retry.ts'
import { cancelBackends, checkDumpCompatible, createCopyProgressPoller, inspectTarget, type TargetFacts } from '../pg/inspector.ts'

export type ProgressFields = Omit<Progress, 'backupId'>

export interface DumpJobContext {
  backup: Backup
  target: Target
  backupDir: string
  pgBinDir?: string
  cancelGraceMs: number
  retry: RetryPolicy
  signal: AbortSignal
  /** at most ~5 per second; the final one has percent 100 */
  onProgress: (p: ProgressFields) => void
  onLog: (line: string) => void
  /** facts learned before the first byte: recorded on the backup while it runs */
  onStarted: (facts: { pgServerVersion: string, pgDumpVersion: string, tablesCount: number }) => Promise<void>
  /** the dump is complete and fsynced, the checksum known; the caller records it before we rename */
  onVerifying: (result: Omit<DumpJobResult, 'files'>) => Promise<void>
}

export interface DumpJobResult {
  files: ManifestFile[]
  sizeBytes: number
  rawBytes: number
  sha256: string
}

const PROGRESS_INTERVAL_MS = 200
const COPY_POLL_MS = 500

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
function failureAfter (bytesWritten: number, stderrTail: string[], exitCode: number | null): PgkeepError {
  const failure = classifyPgFailure(stderrTail, exitCode)
  if (bytesWritten === 0 || !(failure as { retryable?: boolean }).retryable) return failure
  return new PgkeepError('PG_DUMP_FAILED', `pg_dump lost its connection after ${bytesWritten} bytes: ${failure.message}`)
}

function cancelled (): PgkeepError {
  return new PgkeepError('CANCELLED', 'the backup was cancelled; its partial file was removed')
}

/**
 * Runs one pg_dump from first connection to renamed file. Throws PgkeepError (CANCELLED when the
 * signal fired); on any failure the partial file or directory is gone before it returns.
 */
export async function runDumpJob (ctx: DumpJobContext): Promise<DumpJobResult> {
  const { backup, target, signal } = ctx
  const partialPath = join(ctx.backupDir, `${backup.name}.partial`)
  const finalPath = join(ctx.backupDir, backup.name)
  const appName = applicationName(backup.id)
  const pgDump = await findPgTool('pg_dump', ctx.pgBinDir)
  const scope = { schemas: backup.options.schemas, excludeTables: backup.options.excludeTables, schemaOnly: backup.options.schemaOnly, dataOnly: backup.options.dataOnly }

  // Connection problems surface here, before any byte is written, which is where retrying is safe.
  const facts: TargetFacts = await withRetry(() => inspectTarget(target, scope), ctx.retry, { signal })
  if (signal.aborted) throw cancelled()
  checkDumpCompatible(pgDump.major, facts.serverMajor)
  await ctx.onStarted({ pgServerVersion: facts.serverVersion, pgDumpVersion: pgDump.version, tablesCount: facts.tables.length })

  const child = await prepareChildEnv(target, appName)
  const estimator = new ProgressEstimator(facts)
  // pg_dump prints "schema.table" unquoted; the known names disambiguate a dot inside either part
  const knownTables = facts.tables.map(t => ({ schema: t.schema, table: t.name }))
  let lastSent = ''
  const sendProgress = (): void => {
    const snap = estimator.snapshot()
    const key = `${snap.bytes}|${snap.percent}|${snap.currentTable}|${snap.tablesDone}`
    if (key === lastSent) return
    lastSent = key
    ctx.onProgress(snap)
  }
  const ticker = setInterval(sendProgress, PROGRESS_INTERVAL_MS)
  const poller = createCopyProgressPoller(target, appName, COPY_POLL_MS, s => estimator.onCopySample(s))

  try {
    const result = await withRetry(async () => {
      await removePartial(partialPath)
      return await dumpOnce()
    }, ctx.retry, { signal })
    estimator.complete()
    clearInterval(ticker)
    lastSent = ''
    sendProgress()
    return result
  } catch (err) {
    await removePartial(partialPath)
    if (signal.aborted) throw cancelled()
    throw toPgkeepError(err)
  } finally {
    clearInterval(ticker)
    await poller.stop()
    await child.dispose()
  }

  async function dumpOnce (): Promise<DumpJobResult> {
    const isDirectory = backup.format === 'directory'
    const args = buildPgDumpArgs({
      format: backup.format,
      compression: backup.compression,
      level: backup.level,
      options: backup.options,
      pgDumpMajor: pgDump.major,
      outputDir: isDirectory ? partialPath : undefined,
    }, child.connArgs())
    const run = spawnPgDump(pgDump.path, args, child.env)
    run.onLine((line) => {
      ctx.onLog(line)
      const table = parseDumpingTable(line, knownTables)
      if (table) estimator.onTableStarted(table.schema, table.table)
    })

    let killTimer: NodeJS.Timeout | undefined
    const onAbort = (): void => {
      run.kill('SIGTERM')
      killTimer = setTimeout(() => run.kill('SIGKILL'), ctx.cancelGraceMs)
      // pg_dump's server backend can outlive a killed client for a while: stop it explicitly
      cancelBackends(target, appName).catch(() => {})
    }
    signal.addEventListener('abort', onAbort, { once: true })

    try {
      if (isDirectory) return await dumpDirectory(run)
      return await dumpSingleFile(run)
    } finally {
      signal.removeEventListener('abort', onAbort)
      if (killTimer) clearTimeout(killTimer)
    }
  }

  async function dumpSingleFile (run: ReturnType<typeof spawnPgDump>): Promise<DumpJobResult> {
    const piped = runDumpPipeline({
      source: run.stdout,
      compression: backup.compression,
      level: backup.level,
      partialPath,
      onBytes: n => estimator.onBytes(n),
      signal,
    })
    // a failed write (disk full) leaves pg_dump blocked on a full pipe: stop it
    piped.catch(() => run.kill('SIGTERM'))
    const exit = await run.exited
    const outcome = await piped.then(r => ({ ok: true as const, r }), (e: unknown) => ({ ok: false as const, e }))
    if (signal.aborted) throw cancelled()
    if (!outcome.ok) throw toPgkeepError(outcome.e)
    if (exit.code !== 0) throw failureAfter(outcome.r.rawBytes, exit.stderrTail, exit.code)
    const { rawBytes, sizeBytes, sha256 } = outcome.r
    await ctx.onVerifying({ rawBytes, sizeBytes, sha256 })
    const onDisk = (await stat(partialPath)).size
    if (onDisk !== sizeBytes) throw new PgkeepError('INTEGRITY_FAILED', `wrote ${sizeBytes} bytes but ${onDisk} are on disk`)
    await commitPartial(partialPath, finalPath)
    return { rawBytes, sizeBytes, sha256, files: [{ path: backup.name, sizeBytes, sha256 }] }
  }

  async function dumpDirectory (run: ReturnType<typeof spawnPgDump>): Promise<DumpJobResult> {
    // pg_dump writes the files itself; we can only watch the directory grow
    run.stdout.resume()
    const sizer = setInterval(() => { directorySize(partialPath).then(n => estimator.onBytes(n), () => {}) }, COPY_POLL_MS)
    let exit
    try {
      exit = await run.exited
    } finally {
      clearInterval(sizer)
    }
    if (signal.aborted) throw cancelled()
    if (exit.code !== 0) throw failureAfter(await directorySize(partialPath), exit.stderrTail, exit.code)
    const tree = await hashDirectory(partialPath)
    const partialPrefix = `${backup.name}.partial/`
    const files = tree.files.map(f => ({ ...f, path: f.path.startsWith(partialPrefix) ? `${backup.name}/${f.path.slice(partialPrefix.length)}` : f.path }))
    // the directory's checksum covers final paths, so it stays valid after the rename
    const sha256 = digestOfFiles(files)
    const result = { rawBytes: tree.sizeBytes, sizeBytes: tree.sizeBytes, sha256 }
    estimator.onBytes(tree.sizeBytes)
    await ctx.onVerifying(result)
    await commitPartial(partialPath, finalPath)
    return { ...result, files }
  }
}

import type { StoredCopy } from '../../../schemas/backup.ts'
import type { Target } from '../../config.ts'
import { IntegrityError, PgkeepError, toPgkeepError } from '../../errors.ts'
import { classifyPgFailure, spawnPgDump } from '../dump/pg-dump-process.ts'
import { runDumpPipeline } from '../dump/pipeline.ts'
import type { DumpJobContext, DumpJobResult } from '../dump/dump-job.ts'
import { createEncoders } from '../pg/backup-codec.ts'
import { withTargetClient, versionFromNum } from '../pg/connection.ts'
import { cancelBackends, checkDumpCompatible } from '../pg/inspector.ts'
import { prepareChildEnv } from '../pg/passfile.ts'
import { findPgTool } from '../pg/tools.ts'
import { toolVersionsFile } from '../pg/tool-versions.ts'
import { plainCollector } from '../verify/archive-check.ts'
import { inlineMethod } from '../verify/inline-check.ts'
import { maintenanceTarget } from './discover.ts'

/** A database dump's context, less what pg_dumpall has no use for (retries, warnings, a verifying step). */
export type GlobalsDumpContext = Pick<DumpJobContext, 'backup' | 'target' | 'backupDir' | 'storages' | 'pgBinDir' | 'cancelGraceMs' | 'signal' | 'onProgress' | 'onLog' | 'onStarted'> & {
  appName: string
}

/**
 * The argv of a globals dump. Role passwords (their SCRAM hashes) stay out unless the target opts in: the file then
 * holds nothing that logs anyone in, and an admin sets passwords on the rebuilt server. The password itself
 * reaches pg_dumpall through the job's passfile, never argv.
 */
export function pgDumpallArgs (target: Target, connArgs: string[]): string[] {
  return ['--globals-only', ...(target.globalsRolePasswords === true ? [] : ['--no-role-passwords']), ...connArgs]
}

/**
 * pg_dumpall --globals-only (roles, memberships, role settings, tablespaces) through the same pipeline as a
 * database's dump (codec, checksum, every store), as plain SQL. Small, so there is no progress to estimate: 0 then
 * 100. All stores or none: a copy that fails here fails the member (the set has other members to carry on with).
 * verify: inline checks pg_dumpall's header and trailer as the SQL passes through node (no FIFO: the codec runs in
 * node here anyway, and the check keeps only the first and last 8 KiB); `after` is the service's, as for any backup.
 */
export async function runGlobalsDump (ctx: GlobalsDumpContext): Promise<DumpJobResult> {
  const { backup, signal } = ctx
  const target = maintenanceTarget(ctx.target)
  const tool = await findPgTool('pg_dumpall', ctx.pgBinDir, { versionsFile: toolVersionsFile(ctx.backupDir) })
  const server = await withTargetClient(target, async c => versionFromNum(Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0].v)), { signal })
  checkDumpCompatible(tool.major, server.major)
  await ctx.onStarted({ pgServerVersion: server.version, pgDumpVersion: tool.version, tablesCount: 0 })
  ctx.onProgress({ bytes: 0, rate: 0, percent: 0, tablesDone: 0, tablesTotal: 0 })
  const env = await prepareChildEnv(target, ctx.appName, ctx.backupDir)
  const run = spawnPgDump(tool.path, pgDumpallArgs(ctx.target, env.connArgs()), env.env)
  run.onLine(line => ctx.onLog(line))
  const onAbort = (): void => {
    run.kill('SIGTERM')
    setTimeout(() => run.kill('SIGKILL'), ctx.cancelGraceMs).unref()
    cancelBackends(target, ctx.appName).catch(() => {})
  }
  signal.addEventListener('abort', onAbort, { once: true })
  const writers = await Promise.all(ctx.storages.map(async s => await s.createWriter(backup.name, { signal })))
  const check = backup.options.verify === 'inline' ? plainCollector() : undefined
  try {
    const piped = runDumpPipeline({
      source: run.stdout,
      compression: backup.compression,
      level: backup.level,
      encoders: await createEncoders(backup.compression, backup.level, backup.encryption?.recipients),
      outputs: writers.map(w => w.stream),
      ...(check !== undefined ? { rawTap: check.sink } : {}),
      signal,
    })
    piped.catch(() => run.kill('SIGTERM'))
    const exit = await run.exited
    const outcome = await piped.then(r => ({ ok: true as const, r }), (e: unknown) => ({ ok: false as const, e }))
    if (signal.aborted) throw new PgkeepError('CANCELLED', 'the backup was cancelled; its partial file was removed')
    if (!outcome.ok) throw toPgkeepError(outcome.e)
    if (exit.code !== 0) throw classifyPgFailure(exit.stderrTail, exit.code, exit.signal)
    const { rawBytes, sizeBytes, sha256, failedOutputs } = outcome.r
    const failed = [...failedOutputs.values()][0]
    if (failed !== undefined) throw failed
    const verdict = check?.outcome()
    if (verdict !== undefined && !verdict.ok) throw new IntegrityError(`the inline verification failed, so the backup was not kept: ${verdict.message ?? 'the SQL does not read back'}`)
    for (const w of writers) await w.commit({ sizeBytes })
    ctx.onProgress({ bytes: rawBytes, rate: 0, percent: 100, tablesDone: 0, tablesTotal: 0 })
    const copies: StoredCopy[] = ctx.storages.slice(1).map(s => ({ storage: s.url, status: 'completed' }))
    return {
      rawBytes, sizeBytes, sha256, files: [{ path: backup.name, sizeBytes, sha256 }], copies,
      ...(verdict !== undefined ? { verification: { at: new Date().toISOString(), ok: true, method: inlineMethod('plain') } } : {}),
    }
  } catch (err) {
    await Promise.all(writers.map(async w => await w.abort().catch(() => {})))
    throw err
  } finally {
    signal.removeEventListener('abort', onAbort)
    await env.dispose()
  }
}

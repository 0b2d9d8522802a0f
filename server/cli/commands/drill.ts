import type { WriteStream } from 'node:tty'
import { TARGET_NAME_PATTERN } from '../../../schemas/backup.ts'
import type { Drill, DrillRequest } from '../../../schemas/drill.ts'
import { toPgkeepError } from '../../errors.ts'
import { withBackupApi } from '../with-backup-api.ts'
import { backupIdFor, type BackupApi } from '../backup-api.ts'
import { BACKUP_REF_HELP, backupRefArg, GLOBAL_HELP, parseCommandArgs, patternFlag, UsageError, write, type CliIO, type Command, type Globals } from '../command.ts'
import { EXIT, exitCodeForFailedJob } from '../exit-codes.ts'
import { onInterrupt } from '../interrupt.ts'
import { formatDuration, printJson } from '../output.ts'
import { ProgressReporter } from '../progress-bar.ts'

const OPTIONS = { target: { type: 'string' } } as const

// a drill refused before it starts names a backup or target that cannot be drilled: the caller's mistake
const REFUSALS = new Set(['NOT_FOUND', 'INVALID_STATE', 'INVALID_INPUT'])

export function drillRequestFrom (id: string | undefined, target: string | undefined): DrillRequest {
  if (id !== undefined && target !== undefined) throw new UsageError('give a backup ID or --target, not both')
  if (id !== undefined) return { backupId: backupRefArg(id) }
  const t = patternFlag(target, 'target', TARGET_NAME_PATTERN)
  return t === undefined ? {} : { target: t }
}

export function drillReport (d: Drill): string {
  const verdict = d.status === 'passed' ? 'PASSED' : d.status.toUpperCase()
  const times = [d.durationMs !== undefined && `in ${formatDuration(d.durationMs / 1000)}`, d.restoreMs !== undefined && `restore ${formatDuration(d.restoreMs / 1000)}`].filter(Boolean).join(', ')
  const lines = [`drill of ${d.backupName} (target ${d.target}) on ${d.server}: ${verdict}${times ? ` ${times}` : ''}`]
  const w = Math.max(0, ...d.checks.map(c => c.name.length))
  for (const c of d.checks) {
    lines.push(`  ${(c.skipped ? 'skip' : c.ok ? 'ok' : 'FAIL').padEnd(5)}${c.name.padEnd(w + 2)}${c.message}`)
    for (const e of c.errors ?? []) lines.push(`         ${e}`)
  }
  if (d.error) lines.push(`  ${d.error.code}: ${d.error.message}`)
  lines.push(`scratch database ${d.database} dropped`)
  return lines.join('\n')
}

async function drill (api: BackupApi, io: CliIO, globals: Globals, req: DrillRequest): Promise<number> {
  const reporter = new ProgressReporter(io.stderr, { tty: io.isTTY, columns: (io.stderr as WriteStream).columns || 80 })
  let run
  try {
    run = await api.drill(req, d => {
      const p = d.progress?.restore
      if (p && d.progress?.phase === 'restoring') reporter.update({ backupId: d.backupId, bytes: p.bytes, rate: p.rate, percent: p.percent, currentTable: p.currentItem, tablesDone: 0, tablesTotal: 0 })
      else if (d.progress?.phase === 'checking' && d.progress.check && globals.verbose) reporter.message(`checking ${d.progress.check}`)
    })
  } catch (err) {
    const e = toPgkeepError(err)
    if (REFUSALS.has(e.code)) throw new UsageError(e.message)
    throw err
  }
  const stop = onInterrupt(io, `drill of ${run.drill.backupName}`, async () => { await run.cancel() })
  try {
    const final = await run.done
    reporter.done()
    if (globals.json) printJson(io, final)
    else write(final.status === 'passed' ? io.stdout : io.stderr, drillReport(final))
    if (final.status === 'passed') return EXIT.OK
    if (final.status === 'cancelled') return EXIT.CANCELLED
    // checks that did not hold say the backup does not restore as it should; an error says the drill could not tell
    return final.error ? exitCodeForFailedJob(final.error.code) : EXIT.INTEGRITY
  } finally {
    reporter.done()
    stop()
  }
}

export const command: Command = {
  name: 'drill',
  help: `Usage: pgkeep drill [ID | --target NAME] [--json]

Restores a completed backup (by default the newest completed backup of the target, or of the
default target) into a scratch database pgkeep_drill_<id> on the drill server (config drill.url;
default: the target's own server), runs the checks, and always drops the scratch database:
  restore    pg_restore/psql ended without errors (every error line is kept)
  objects    every table, view, sequence, index, function, type... of the archive's table of
             contents exists after the restore
  rowCounts  rows per table equal the counts made in the dump's snapshot (backups taken with
             countRows), or else the source's reltuples estimates within a tolerance
  assertion  each of the target's drill.assertions
The result (every check, the restore time) is kept with the backup and in the drill history.
Ctrl-C cancels the drill (exit 130). Exit 0 when every check held, 3 when one did not, 2 when
the backup cannot be drilled (unknown, not completed), 1 when the drill could not run.

Flags:
  --target NAME     drill the newest completed backup of this target

${BACKUP_REF_HELP}

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values, positionals, globals } = parseCommandArgs(argv, OPTIONS, io, { max: 1, names: 'backup ID' })
    const req = drillRequestFrom(positionals[0], values.target as string | undefined)
    return await withBackupApi(io, globals, async api => await drill(api, io, globals,
      req.backupId !== undefined ? { backupId: await backupIdFor(api, req.backupId) } : req))
  },
}

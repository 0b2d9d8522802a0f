import type { CleanupRequest, CleanupResult, RetentionPolicy } from '../../../schemas/backup.ts'
import { withBackupApi } from '../with-backup-api.ts'
import { GLOBAL_HELP, intFlag, numberFlag, parseCommandArgs, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { formatBytes, plural, printJson, table, formatTime } from '../output.ts'

const OPTIONS = {
  'keep-last': { type: 'string' },
  'max-age-days': { type: 'string' },
  'keep-daily': { type: 'string' },
  'keep-weekly': { type: 'string' },
  'keep-monthly': { type: 'string' },
  target: { type: 'string' },
  'dry-run': { type: 'boolean' },
} as const

export function policyFromFlags (values: Record<string, unknown>): RetentionPolicy | undefined {
  const v = values as Record<string, string | undefined>
  const policy: RetentionPolicy = {
    keepLast: intFlag(v['keep-last'], 'keep-last', 1, 1_000_000),
    maxAgeDays: numberFlag(v['max-age-days'], 'max-age-days', 0),
    keepDaily: intFlag(v['keep-daily'], 'keep-daily', 1, 1_000_000),
    keepWeekly: intFlag(v['keep-weekly'], 'keep-weekly', 1, 1_000_000),
    keepMonthly: intFlag(v['keep-monthly'], 'keep-monthly', 1, 1_000_000),
  }
  for (const k of Object.keys(policy) as (keyof RetentionPolicy)[]) if (policy[k] === undefined) delete policy[k]
  return Object.keys(policy).length > 0 ? policy : undefined
}

/**
 * What goes and why, then (in a dry run, or with --verbose) what stays and which rules keep it: the same reasons
 * the API's preview gives the dashboard (docs/http-api.md, "Cleanup preview").
 */
function print (io: CliIO, r: CleanupResult, verbose: boolean): void {
  const verb = r.dryRun ? 'would delete' : 'deleted'
  if (r.deleted.length > 0) {
    const why = new Map((r.deletedReasons ?? []).map(d => [d.id, d.reason]))
    write(io.stdout, r.dryRun ? 'Would delete:' : 'Deleted:')
    io.stdout.write(table(['ID', 'NAME', 'CREATED', 'SIZE', 'WHY'], r.deleted.map(b => [b.id, b.name, formatTime(b.createdAt), formatBytes(b.sizeBytes), why.get(b.id) ?? ''])))
  }
  if ((r.dryRun || verbose) && r.kept.length > 0) {
    if (r.deleted.length > 0) write(io.stdout, '')
    write(io.stdout, r.dryRun ? 'Would keep:' : 'Kept:')
    io.stdout.write(table(['ID', 'NAME', 'KEPT BECAUSE'], r.kept.map(k => [k.id, k.name, k.reasons.join(', ')])))
  }
  if (r.deleted.length === 0) write(io.stdout, `nothing to delete; ${plural(r.kept.length, 'backup')} kept`)
  else {
    const freed = r.deleted.reduce((n, b) => n + (b.sizeBytes ?? 0), 0)
    write(io.stdout, `${verb} ${plural(r.deleted.length, 'backup')}, ${formatBytes(freed)}; ${r.kept.length} kept`)
  }
}

export const command: Command = {
  name: 'cleanup',
  help: `Usage: pgkeep cleanup [policy flags] [--target NAME] [--dry-run]

Deletes completed backups the retention policy no longer keeps. Rules count each series apart
(a target's full backups, its schema-only ones, its data-only ones, each --schema/--exclude-table
selection). Never deletes a running or pinned backup, nor the newest completed backup of a series
(so never the newest full backup of a target). The policy comes from the flags;
without any, from "retention" in the config file. An empty policy is refused.
--dry-run lists exactly what the real run would delete, and why each backup is kept
(--verbose says it for a real run too).

Policy flags (a backup is kept when any rule keeps it):
  --keep-last N        the N newest
  --max-age-days D     everything younger than D days
  --keep-daily N       the newest of each of the last N days
  --keep-weekly N      the newest of each of the last N weeks
  --keep-monthly N     the newest of each of the last N months
  --target NAME        only this target's backups
  --dry-run            only show what would be deleted

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values, globals } = parseCommandArgs(argv, OPTIONS, io)
    const req: CleanupRequest = { policy: policyFromFlags(values), target: values.target, dryRun: values['dry-run'] === true }
    if (!req.target) delete req.target
    const result = await withBackupApi(io, globals, async api => await api.cleanup(req))
    if (globals.json) printJson(io, result)
    else print(io, result, globals.verbose)
    return EXIT.OK
  },
}

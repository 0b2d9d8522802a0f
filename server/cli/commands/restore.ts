import type { WriteStream } from 'node:tty'
import { TARGET_NAME_PATTERN, type RestoreRequest } from '../../../schemas/backup.ts'
import { withBackupApi } from '../with-backup-api.ts'
import { backupIdFor, type BackupApi } from '../backup-api.ts'
import { BACKUP_REF_HELP, backupRefArg, GLOBAL_HELP, intFlag, parseCommandArgs, patternFlag, UsageError, write, type CliIO, type Command, type Globals } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { onInterrupt } from '../interrupt.ts'
import { formatDuration, printJson } from '../output.ts'
import { ProgressReporter } from '../progress-bar.ts'

const OPTIONS = {
  database: { type: 'string' },
  target: { type: 'string' },
  create: { type: 'boolean' },
  clean: { type: 'boolean' },
  merge: { type: 'boolean' },
  jobs: { type: 'string' },
} as const

export function restoreRequestFromFlags (values: Record<string, unknown>): RestoreRequest {
  const v = values as Record<string, string | boolean | undefined>
  const database = v.database as string | undefined
  if (!database) throw new UsageError('--database is required (the database to restore into)')
  if (database.length > 63 || /[\u0000-\u001f]/.test(database)) throw new UsageError('--database must be 1..63 characters without control characters')
  if (v.clean === true && v.merge === true) throw new UsageError('--clean and --merge exclude each other: --clean replaces the database, --merge adds to it')
  const req: RestoreRequest = {
    database,
    target: patternFlag(v.target as string | undefined, 'target', TARGET_NAME_PATTERN),
    create: v.create === true ? true : undefined,
    clean: v.clean === true ? true : undefined,
    merge: v.merge === true ? true : undefined,
    jobs: intFlag(v.jobs as string | undefined, 'jobs', 1, 32),
  }
  for (const k of Object.keys(req) as (keyof RestoreRequest)[]) if (req[k] === undefined) delete req[k]
  return req
}

async function restore (api: BackupApi, io: CliIO, globals: Globals, id: string, req: RestoreRequest): Promise<number> {
  const reporter = new ProgressReporter(io.stderr, { tty: io.isTTY, columns: (io.stderr as WriteStream).columns || 80 })
  const run = await api.restore(id, req, {
    log: line => { if (globals.verbose) reporter.message(line) },
    progress: p => reporter.update({ backupId: id, bytes: p.bytes, rate: p.rate, percent: p.percent, currentTable: p.currentItem, tablesDone: 0, tablesTotal: 0 }),
  })
  const { name } = run.backup
  let cancelled = false
  const stop = onInterrupt(io, `restore of ${name}`, async () => { cancelled = true; await run.cancel() })
  try {
    const result = await run.done
    reporter.done(true)
    if (globals.json) printJson(io, { ...result, backupId: id, database: req.database })
    else write(io.stdout, `restored ${name} into ${req.database}${result.replaced ? ' (the database that was there is replaced and dropped)' : ''} in ${formatDuration(result.durationMs / 1000)}`)
    return EXIT.OK
  } catch (err) {
    reporter.done()
    if (cancelled) {
      write(io.stderr, `pgkeep: restore of ${name} cancelled`)
      return EXIT.CANCELLED
    }
    throw err
  } finally {
    stop()
  }
}

export const command: Command = {
  name: 'restore',
  help: `Usage: pgkeep restore BACKUP --database DB [--target NAME] [--create] [--clean | --merge] [--jobs N]

Restores a completed backup with pg_restore (psql for plain SQL) into DB on the backup's target
(or --target). A new or replaced database is filled under a scratch name and renamed into place
only once the restore succeeded; a restore into an existing database runs in one transaction.
A failed or cancelled restore leaves DB as it was. Ctrl-C cancels the restore (exit 130). With
--server the server restores it (an admin token is needed) and this command follows it;
--verbose lines come only from a local run.

Flags:
  --database DB     database to restore into (required)
  --target NAME     restore onto another configured target
  --create          create DB (with the dumped database's owner, settings, comment and privileges)
  --clean           replace DB if it exists: the old one is dropped once the restore succeeded
                    (other sessions must be disconnected)
  --merge           restore into an existing DB that already holds objects (refused without it)
  --jobs N          parallel pg_restore workers (custom and directory formats, 1..32; not into an
                    existing database, which is restored in one transaction)

${BACKUP_REF_HELP}

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values, positionals, globals } = parseCommandArgs(argv, OPTIONS, io, { min: 1, max: 1, names: 'backup ID' })
    const ref = backupRefArg(positionals[0])
    const req = restoreRequestFromFlags(values)
    return await withBackupApi(io, globals, async api => await restore(api, io, globals, await backupIdFor(api, ref), req))
  },
}

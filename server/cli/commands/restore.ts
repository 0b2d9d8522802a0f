import type { WriteStream } from 'node:tty'
import { TARGET_NAME_PATTERN, type RestoreRequest } from '../../../schemas/backup.ts'
import { withBackupApi } from '../with-backup-api.ts'
import { backupIdFor, type BackupApi } from '../backup-api.ts'
import { BACKUP_REF_HELP, backupRefArg, GLOBAL_HELP, intFlag, parseCommandArgs, patternFlag, UsageError, write, type CliIO, type Command, type Globals } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { onInterrupt } from '../interrupt.ts'
import { formatDuration, printJson } from '../output.ts'
import { setRestoreSummary } from '../set-output.ts'
import { toPgkeepError } from '../../errors.ts'
import type { SetRestoreRequest } from '../../../schemas/sets.ts'
import { ProgressReporter } from '../progress-bar.ts'

const OPTIONS = {
  database: { type: 'string' },
  target: { type: 'string' },
  create: { type: 'boolean' },
  clean: { type: 'boolean' },
  merge: { type: 'boolean' },
  jobs: { type: 'string' },
  to: { type: 'string' },
  'skip-globals': { type: 'boolean' },
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

/** A whole set onto a server: globals, then each database created; one line per step with --verbose. */
async function restoreSet (api: BackupApi, io: CliIO, globals: Globals, id: string, req: SetRestoreRequest): Promise<number> {
  await api.getSet(id).catch((err: unknown) => {
    if (toPgkeepError(err).code === 'NOT_FOUND') throw new UsageError(`--database is required to restore one backup (${id} is not a backup set)`)
    throw err
  })
  let last = ''
  const run = await api.restoreSet(id, req, s => {
    const now = s.members.find(m => m.status === 'running')
    const line = now ? `restoring ${now.database || 'globals'}` : ''
    if (globals.verbose && line !== '' && line !== last) write(io.stderr, line)
    last = line
  })
  let cancelled = false
  const stop = onInterrupt(io, `restore of the set ${run.set.name}`, async () => { cancelled = true; await run.cancel() })
  try {
    const final = await run.done
    if (globals.json) printJson(io, final)
    else write(io.stdout, setRestoreSummary(final))
    if (final.status === 'completed') return EXIT.OK
    if (final.status === 'cancelled' || cancelled) return EXIT.CANCELLED
    write(io.stderr, `pgkeep: ${final.error?.code ?? 'INTERNAL'}: ${final.error?.message ?? 'the set restore failed'}`)
    return EXIT.FAILED
  } finally {
    stop()
  }
}

export const command: Command = {
  name: 'restore',
  help: `Usage: pgkeep restore BACKUP --database DB [--target NAME] [--create] [--clean | --merge] [--jobs N]
       pgkeep restore SETID [--target NAME | --to NAME] [--skip-globals]

Restores a completed backup with pg_restore (psql for plain SQL) into DB on the backup's target
(or --target). A new or replaced database is filled under a scratch name and renamed into place
only once the restore succeeded; a restore into an existing database runs in one transaction.
A failed or cancelled restore leaves DB as it was. Ctrl-C cancels the restore (exit 130). With
--server the server restores it (an admin token is needed) and this command follows it;
--verbose lines come only from a local run.

A backup set (create --all-databases) restores whole onto a server when no --database is given:
the globals first (roles, memberships, tablespaces; a role or tablespace that already exists is left
alone and listed), then every database, created with its dumped owner and settings. It is refused
before anything is written if one of its databases exists there with objects in it. Restore one
member as any backup, with its own ID and --database.

Flags:
  --database DB     database to restore into (required for one backup)
  --target NAME     restore onto another configured target (--to NAME: the same)
  --skip-globals    set restore: the databases only
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
    if (values.to !== undefined && values.target !== undefined) throw new UsageError('--to is another name for --target: give one of them')
    const target = values.to ?? values.target
    if (values.database === undefined) {
      // no database: ID is a set, rebuilt whole on a server
      for (const flag of ['create', 'clean', 'merge', 'jobs'] as const) if (values[flag] !== undefined) throw new UsageError(`--${flag} applies to one backup restored with --database; a set restore creates each database`)
      const req: SetRestoreRequest = { ...(target !== undefined ? { target: patternFlag(target, 'target', TARGET_NAME_PATTERN) } : {}), ...(values['skip-globals'] === true ? { skipGlobals: true } : {}) }
      return await withBackupApi(io, globals, async api => await restoreSet(api, io, globals, ref, req))
    }
    if (values['skip-globals'] === true) throw new UsageError('--skip-globals applies to a set restore (without --database)')
    const req = restoreRequestFromFlags({ ...values, target })
    return await withBackupApi(io, globals, async api => await restore(api, io, globals, await backupIdFor(api, ref), req))
  },
}

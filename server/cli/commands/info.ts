import { withBackupApi } from '../with-backup-api.ts'
import { backupIdFor } from '../backup-api.ts'
import { BACKUP_REF_HELP, backupRefArg, GLOBAL_HELP, parseCommandArgs, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { backupDetails, printJson } from '../output.ts'
import { renderProgress } from '../progress-bar.ts'
import { setDetails } from '../set-output.ts'
import { toPgkeepError } from '../../errors.ts'

/** Shared by info and status: the record plus a live progress snapshot when the job is running. */
export async function showBackup (argv: string[], io: CliIO): Promise<number> {
  const { positionals, globals } = parseCommandArgs(argv, {}, io, { min: 1, max: 1, names: 'backup ID' })
  const ref = backupRefArg(positionals[0])
  // a set's id shows the set with its members (ids of both kinds are UUIDv7: the backup is asked for first)
  const shown = await withBackupApi(io, globals, async (api) => {
    const id = await backupIdFor(api, ref)
    return await api.status(id).catch(async (err: unknown) => {
      if (toPgkeepError(err).code !== 'NOT_FOUND') throw err
      return { set: await api.getSet(id).catch(() => { throw err }) }
    })
  })
  if ('set' in shown) {
    if (globals.json) printJson(io, shown)
    else io.stdout.write(setDetails(shown.set))
    return EXIT.OK
  }
  if (globals.json) {
    printJson(io, shown)
    return EXIT.OK
  }
  io.stdout.write(backupDetails(shown.backup))
  if (shown.progress) io.stdout.write(`Progress: ${renderProgress(shown.progress, 200)}\n`)
  return EXIT.OK
}

export function helpFor (name: string, summary: string): string {
  return `Usage: pgkeep ${name} BACKUP [--json]

${summary}. With --json prints {backup, progress?}, the backup record as in schemas/backup.ts.

${BACKUP_REF_HELP}

${GLOBAL_HELP}
`
}

export const command: Command = {
  name: 'info',
  help: helpFor('info', 'Shows one backup: files, size, checksum, versions, verification, error, and live progress while it runs; a set\'s ID shows the set and its members'),
  run: showBackup,
}

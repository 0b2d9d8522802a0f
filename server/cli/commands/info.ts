import { withBackupApi } from '../with-backup-api.ts'
import { backupIdFor } from '../backup-api.ts'
import { BACKUP_REF_HELP, backupRefArg, GLOBAL_HELP, parseCommandArgs, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { backupDetails, printJson } from '../output.ts'
import { renderProgress } from '../progress-bar.ts'

/** Shared by info and status: the record plus a live progress snapshot when the job is running. */
export async function showBackup (argv: string[], io: CliIO): Promise<number> {
  const { positionals, globals } = parseCommandArgs(argv, {}, io, { min: 1, max: 1, names: 'backup ID' })
  const ref = backupRefArg(positionals[0])
  const shown = await withBackupApi(io, globals, async api => await api.status(await backupIdFor(api, ref)))
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
  help: helpFor('info', 'Shows one backup: files, size, checksum, versions, verification, error, and live progress while it runs'),
  run: showBackup,
}

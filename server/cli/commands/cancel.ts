import { withBackupApi } from '../with-backup-api.ts'
import { backupIdFor } from '../backup-api.ts'
import { BACKUP_REF_HELP, backupRefArg, GLOBAL_HELP, parseCommandArgs, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { printJson } from '../output.ts'

export const command: Command = {
  name: 'cancel',
  help: `Usage: pgkeep cancel BACKUP [--json]

Stops pg_dump (SIGTERM, then SIGKILL after the grace period), cancels its server backend and
removes the partial file; the backup ends as cancelled. Locally a job can only be cancelled by
the process running it: use --server for jobs of a running pgkeep server, or Ctrl-C in the
pgkeep create that started it.

${BACKUP_REF_HELP}

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { positionals, globals } = parseCommandArgs(argv, {}, io, { min: 1, max: 1, names: 'backup ID' })
    const ref = backupRefArg(positionals[0])
    const backup = await withBackupApi(io, globals, async api => await api.cancel(await backupIdFor(api, ref)))
    if (globals.json) printJson(io, backup)
    else write(io.stdout, `${backup.status} ${backup.name}`)
    return EXIT.OK
  },
}

import { withBackupApi } from '../with-backup-api.ts'
import { backupIdFor } from '../backup-api.ts'
import { BACKUP_REF_HELP, backupRefArg, GLOBAL_HELP, parseCommandArgs, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { printJson } from '../output.ts'

export const command: Command = {
  name: 'pin',
  help: `Usage: pgkeep pin BACKUP [--off] [--json]

A pinned backup is never deleted by cleanup. --off removes the pin.

${BACKUP_REF_HELP}

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values, positionals, globals } = parseCommandArgs(argv, { off: { type: 'boolean' } }, io, { min: 1, max: 1, names: 'backup ID' })
    const ref = backupRefArg(positionals[0])
    const pinned = values.off !== true
    const backup = await withBackupApi(io, globals, async api => await api.pin(await backupIdFor(api, ref), pinned))
    if (globals.json) printJson(io, backup)
    else write(io.stdout, `${pinned ? 'pinned' : 'unpinned'} ${backup.name}`)
    return EXIT.OK
  },
}

import { withBackupApi } from '../with-backup-api.ts'
import { backupIdArg, GLOBAL_HELP, parseCommandArgs, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { printJson } from '../output.ts'

export const command: Command = {
  name: 'pin',
  summary: 'keep a backup forever (or --off to let retention remove it again)',
  help: `Usage: pgkeep pin ID [--off] [--json]

A pinned backup is never deleted by cleanup. --off removes the pin.

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values, positionals, globals } = parseCommandArgs(argv, { off: { type: 'boolean' } }, io, { min: 1, max: 1, names: 'backup ID' })
    const id = backupIdArg(positionals[0])
    const pinned = values.off !== true
    const backup = await withBackupApi(io, globals, async api => await api.pin(id, pinned))
    if (globals.json) printJson(io, backup)
    else write(io.stdout, `${pinned ? 'pinned' : 'unpinned'} ${backup.name}`)
    return EXIT.OK
  },
}

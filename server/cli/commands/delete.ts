import { withBackupApi } from '../with-backup-api.ts'
import { BACKUP_REF_HELP, backupRefArg, GLOBAL_HELP, parseCommandArgs, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { printJson } from '../output.ts'

export const command: Command = {
  name: 'delete',
  help: `Usage: pgkeep delete BACKUP [--json]

Deletes one backup: its files, its manifest and its copies, and its registry entry. A running backup
must be cancelled first. With --server, the token's user must be an admin (DELETE /api/backup/:id).
--json prints {"deleted": ID}.

${BACKUP_REF_HELP}

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { positionals, globals } = parseCommandArgs(argv, {}, io, { min: 1, max: 1, names: 'backup ID' })
    const ref = backupRefArg(positionals[0])
    const backup = await withBackupApi(io, globals, async api => {
      // resolved even from a full ID: the confirmation names the backup, not just its ID
      const b = await api.resolve(ref)
      await api.delete(b.id)
      return b
    })
    if (globals.json) printJson(io, { deleted: backup.id })
    else write(io.stdout, `deleted ${backup.name}`)
    return EXIT.OK
  },
}

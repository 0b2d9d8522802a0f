import { withBackupApi } from '../with-backup-api.ts'
import { backupIdFor } from '../backup-api.ts'
import { BACKUP_REF_HELP, backupRefArg, GLOBAL_HELP, parseCommandArgs, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { printJson } from '../output.ts'

export const command: Command = {
  name: 'validate',
  help: `Usage: pgkeep validate BACKUP [--json]

Re-hashes every file of a completed backup against its manifest, then checks its structure
(pg_restore reads the whole archive; plain SQL must end with pg_dump's completion trailer).
The result is stored in the backup's record.

Exit codes: 0 the backup is intact, 3 the check failed, 1 it could not be run.

${BACKUP_REF_HELP}

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { positionals, globals } = parseCommandArgs(argv, {}, io, { min: 1, max: 1, names: 'backup ID' })
    const ref = backupRefArg(positionals[0])
    const backup = await withBackupApi(io, globals, async api => await api.validate(await backupIdFor(api, ref)))
    const v = backup.verification
    const ok = v?.ok === true
    if (globals.json) printJson(io, backup)
    else if (ok) write(io.stdout, `ok  ${backup.name}  (${v.method})`)
    if (!ok) write(io.stderr, `pgkeep: INTEGRITY_FAILED: ${backup.name}: ${v?.message ?? 'the check failed'}${v ? ` (${v.method})` : ''}`)
    return ok ? EXIT.OK : EXIT.INTEGRITY
  },
}

import { withBackupApi } from '../with-backup-api.ts'
import { backupIdFor } from '../backup-api.ts'
import { BACKUP_REF_HELP, backupRefArg, GLOBAL_HELP, parseCommandArgs, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { formatBytes, printJson } from '../output.ts'

export const command: Command = {
  name: 'download',
  help: `Usage: pgkeep download BACKUP [-o FILE] --server URL   (the token in PGKEEP_TOKEN)

Streams a completed backup from a pgkeep server into FILE (default: the backup's name in the
current directory). The data goes to FILE.partial first and is renamed only once complete and
its sha256 matches the backup record; an interrupted download resumes from FILE.partial.
Directory-format backups arrive as a tar archive (not checksum-comparable; the server checks
them before sending). Without --server, copies the file from the local backups dir after the
same integrity check the server makes.

An encrypted backup (.age) arrives as stored, for \`age -d -i key.txt\`; with --decrypt it is decrypted
where it is stored (the server's, or this machine's, PGKEEP_AGE_IDENTITY_FILE) and arrives still
compressed, its stored bytes checked against the manifest on the way (not resumable).

Flags:
  -o, --output FILE   where to write
      --decrypt       decrypt an encrypted backup on the way (needs the identity file where it is stored)

${BACKUP_REF_HELP}

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values, positionals, globals } = parseCommandArgs(argv, { output: { type: 'string', short: 'o' }, decrypt: { type: 'boolean' } }, io, { min: 1, max: 1, names: 'backup ID' })
    const ref = backupRefArg(positionals[0])
    const r = await withBackupApi(io, globals, async api => await api.download(await backupIdFor(api, ref), values.output, { decrypt: values.decrypt === true }))
    if (globals.json) printJson(io, r)
    else write(io.stdout, `${r.path}  ${formatBytes(r.bytes)}${r.resumedFrom ? ` (resumed at ${formatBytes(r.resumedFrom)})` : ''}${r.verified ? '  sha256 ok' : ''}`)
    return EXIT.OK
  },
}

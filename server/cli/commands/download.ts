import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { copyFile, rename, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { PgkeepError } from '../../errors.ts'
import { backupIdArg, GLOBAL_HELP, parseCommandArgs, UsageError, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { withLocalService } from '../local-service.ts'
import { formatBytes, printJson } from '../output.ts'
import { RemoteClient } from '../remote-client.ts'

export const command: Command = {
  name: 'download',
  summary: 'fetch a completed backup to a file (resumable, checksum verified)',
  help: `Usage: pgkeep download ID [-o FILE] --server URL --token T

Streams a completed backup from a pgkeep server into FILE (default: the backup's name in the
current directory). The data goes to FILE.partial first and is renamed only once complete and
its sha256 matches the backup record; an interrupted download resumes from FILE.partial.
Directory-format backups arrive as a tar archive (not checksum-comparable; the server checks
them before sending). Without --server, copies the file from the local backups dir after the
same integrity check the server makes.

Flags:
  -o, --output FILE   where to write

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values, positionals, globals } = parseCommandArgs(argv, { output: { type: 'string', short: 'o' } }, io, { min: 1, max: 1, names: 'backup ID' })
    const id = backupIdArg(positionals[0])
    if (globals.server) {
      const client = new RemoteClient(globals.server, globals.token ?? '')
      const { backup } = await client.status(id)
      if (backup.status !== 'completed') throw new UsageError(`backup ${backup.name} is ${backup.status}; only completed backups can be downloaded`)
      const file = resolve(values.output ?? (backup.format === 'directory' ? `${backup.name}.tar` : backup.name))
      const r = await client.download(backup, file)
      if (globals.json) printJson(io, r)
      else write(io.stdout, `${r.path}  ${formatBytes(r.bytes)}${r.resumedFrom > 0 ? ` (resumed at ${formatBytes(r.resumedFrom)})` : ''}${r.verified ? '  sha256 ok' : ''}`)
      return EXIT.OK
    }
    const r = await withLocalService(io, globals, async (service) => {
      const backup = service.get(id)
      const path = join(service.config.backupDir, backup.name)
      // refused before the integrity check: however sound, a directory is not one file to copy
      if (backup.status === 'completed' && backup.format === 'directory') throw new UsageError(`backup ${backup.name} is a directory at ${path}; copy it from there or use --server for a tar`)
      const [stored] = (await service.openVerified(id)).files
      const file = resolve(values.output ?? backup.name)
      // the copy is not renamed into place until it is whole and matches the manifest, same as the remote path
      await copyFile(stored.abs, `${file}.partial`)
      const hash = createHash('sha256')
      let bytes = 0
      for await (const chunk of createReadStream(`${file}.partial`)) { hash.update(chunk as Buffer); bytes += (chunk as Buffer).length }
      const sha256 = hash.digest('hex')
      if (sha256 !== stored.sha256) {
        await rm(`${file}.partial`, { force: true })
        throw new PgkeepError('INTEGRITY_FAILED', `${path} has sha256 ${sha256}, its manifest says ${stored.sha256}; run pgkeep validate ${id}`)
      }
      await rename(`${file}.partial`, file)
      return { path: file, bytes, sha256, verified: true }
    })
    if (globals.json) printJson(io, r)
    else write(io.stdout, `${r.path}  ${formatBytes(r.bytes)}${r.verified ? '  sha256 ok' : ''}`)
    return EXIT.OK
  },
}

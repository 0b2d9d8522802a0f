import { GLOBAL_HELP, parseCommandArgs, UsageError, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { withLocalService } from '../local-service.ts'
import { plural, printJson } from '../output.ts'

export const command: Command = {
  name: 'reindex',
  help: `Usage: pgkeep reindex [--json]

Rebuilds the registry (registry.json, or the PostgreSQL catalog when PGKEEP_CATALOG_URL is set) from
the <name>.manifest.json files next to each completed backup. Use it after copying backups in from
elsewhere or when the registry was lost.

${GLOBAL_HELP}
`,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { globals } = parseCommandArgs(argv, {}, io)
    if (globals.server) throw new UsageError('reindex works on the local backups dir; it does not take --server')
    const result = await withLocalService(io, globals, async (service, audit) => await audit.around('registry.reindex', async () => await service.reindex()))
    if (globals.json) printJson(io, result)
    else write(io.stdout, `registry rebuilt: ${plural(result.count, 'backup')}`)
    return EXIT.OK
  },
}

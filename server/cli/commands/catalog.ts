import { loadConfig } from '../../config.ts'
import { PgkeepError } from '../../errors.ts'
import { GLOBAL_HELP, parseCommandArgs, UsageError, write, type CliIO, type Command } from '../command.ts'
import { EXIT } from '../exit-codes.ts'
import { plural, printJson } from '../output.ts'

const help = `Usage: pgkeep catalog import [--dry-run]

Moves the file catalog of the backups dir (PGKEEP_BACKUP_DIR: registry.json, .pgkeep/drills.json)
into the PostgreSQL catalog of PGKEEP_CATALOG_URL. Records the catalog already holds are skipped, so
running it again imports nothing new. The files are left as they are.

Flags:
  --dry-run    count what would be imported, write nothing

${GLOBAL_HELP}`

const options = { 'dry-run': { type: 'boolean' } } as const

export const command: Command = {
  name: 'catalog',
  help,
  async run (argv: string[], io: CliIO): Promise<number> {
    const { values, positionals, globals } = parseCommandArgs(argv, options, io, { min: 1, max: 1, names: 'subcommand (import)' })
    if (positionals[0] !== 'import') throw new UsageError(`catalog: unknown subcommand "${positionals[0]}" (import)`)
    if (globals.server) throw new UsageError('catalog import works on the local backups dir; it does not take --server')
    const config = loadConfig(io.env)
    // a setting missing, not a mistyped command: one line, no pointer to --help
    if (config.catalog === undefined) throw new PgkeepError('CONFIG_INVALID', 'catalog import: no PostgreSQL catalog configured; set PGKEEP_CATALOG_URL (or catalog in the config file)')
    const dryRun = values['dry-run'] ?? false
    // loaded here so --help and usage errors never load the pg driver
    const { CatalogDb } = await import('../../catalog/catalog-db.ts')
    const { importFileCatalog } = await import('../../catalog/import.ts')
    const db = await CatalogDb.open(config.catalog)
    let results
    try {
      results = await importFileCatalog(config.backupDir, db, { dryRun })
    } finally {
      await db.close()
    }
    if (globals.json) {
      printJson(io, { dryRun, backupDir: config.backupDir, results })
      return EXIT.OK
    }
    const verb = dryRun ? 'would import' : 'imported'
    for (const r of results) write(io.stdout, `${r.kind}: ${verb} ${r.imported}, skipped ${r.skipped} (already in the catalog)`)
    const total = results.reduce((n, r) => n + r.imported, 0)
    if (total === 0) write(io.stdout, `nothing new to import from ${config.backupDir}: the catalog holds all of it`)
    else write(io.stdout, dryRun ? `dry run: ${plural(total, 'record')} would be imported; nothing was written` : `${plural(total, 'record')} imported into the catalog`)
    return EXIT.OK
  },
}

import { compileOnUse } from '../compile-on-use.ts'
import { CreateBackupRequest, type Backup, type BackupOptions } from '../../schemas/backup.ts'
import { createRuleProblems, DEFAULT_COMPRESSION, DEFAULT_FORMAT, DEFAULT_LEVEL, LEVEL_RANGE } from '../../schemas/create-rules.ts'
import type { Config, Target } from '../config.ts'
import { InvalidInputError } from '../errors.ts'
import { directoryCompressionSupported, type PgTool } from './pg/tools.ts'
import type { DatabaseSelection } from './sets/discover.ts'

const checkRequest = compileOnUse(CreateBackupRequest)

/** The first schema violation as one line naming the field, e.g. "format: must be one of ...". */
function describeSchemaError (req: unknown): InvalidInputError {
  const errors = [...checkRequest.Errors(req)]
  const extra = errors.find(e => e.keyword === 'additionalProperties')
  if (extra) {
    const names = (extra.params as { additionalProperties?: string[] }).additionalProperties ?? []
    return new InvalidInputError(`unknown field: ${names.join(', ')}`, names[0])
  }
  const first = errors.find(e => e.keyword !== 'anyOf' && e.keyword !== 'boolean') ?? errors[0]
  const field = first?.instancePath.split('/').filter(Boolean)[0]
  if (first?.keyword === 'const' || first?.keyword === 'anyOf') {
    return new InvalidInputError(`${field}: not an allowed value`, field)
  }
  if (field === 'name') return new InvalidInputError('name: must start with a letter or digit and contain only letters, digits, ".", "_" or "-" (at most 100 characters)', 'name')
  return new InvalidInputError(`${field ?? 'body'}: ${first?.message ?? 'invalid'}`, field)
}

export interface ResolvedRequest {
  target: Target
  format: Backup['format']
  compression: Backup['compression']
  level: number
  options: BackupOptions
  name?: string
  /** false when the compression is the default, which pgkeep may then fit to the installed pg_dump */
  compressionChosen: boolean
  levelChosen: boolean
  /** what pgkeep decided on the user's behalf, recorded on the backup and shown by the CLI */
  notes: string[]
  /** a backup set (engine/sets): which databases, and whether the globals are a member */
  set?: { selection: DatabaseSelection, globals: boolean }
}

/**
 * A run is a set when the request says so (allDatabases, databases, globals) or its target names a whole server
 * (`databases` in the config). The globals come with every multi-database set unless the request says
 * `globals: false`; a single database gets them only when asked (`globals: true`).
 */
function setOf (req: CreateBackupRequest, target: Target): ResolvedRequest['set'] {
  if (req.allDatabases === true) return { selection: { databases: '*', excludeDatabases: target.excludeDatabases }, globals: req.globals ?? true }
  if (req.databases !== undefined) return { selection: { databases: req.databases }, globals: req.globals ?? true }
  if (req.allDatabases === undefined && target.databases !== undefined) {
    return { selection: { databases: target.databases, excludeDatabases: target.excludeDatabases }, globals: req.globals ?? true }
  }
  if (req.globals === true) return { selection: { databases: [target.database] }, globals: true }
  return undefined
}

/**
 * Checks a create request against the schema, the shared create rules (schemas/create-rules.ts) and
 * the configured targets, and fills in the defaults.
 */
export function resolveCreateRequest (req: unknown, config: Config): ResolvedRequest {
  if (!checkRequest.Check(req)) throw describeSchemaError(req)
  const targetName = req.target ?? (config.targets.default ? 'default' : Object.keys(config.targets)[0])
  const target = targetName === undefined ? undefined : config.targets[targetName]
  if (!target) {
    throw new InvalidInputError(`target: unknown target "${req.target}"; configured: ${Object.keys(config.targets).join(', ') || 'none'}`, 'target')
  }
  const [problem] = createRuleProblems(req)
  if (problem) throw new InvalidInputError(problem.message, problem.field)
  const compression = req.compression ?? DEFAULT_COMPRESSION
  const set = setOf(req, target)
  return {
    ...(set !== undefined ? { set } : {}),
    target,
    format: req.format ?? DEFAULT_FORMAT,
    compression,
    level: req.level ?? DEFAULT_LEVEL[compression],
    name: req.name,
    compressionChosen: req.compression !== undefined,
    levelChosen: req.level !== undefined,
    notes: [],
    options: {
      schemaOnly: req.schemaOnly ?? false,
      dataOnly: req.dataOnly ?? false,
      schemas: req.schemas ?? [],
      excludeTables: req.excludeTables ?? [],
      jobs: req.jobs ?? 1,
      noOwner: req.noOwner ?? false,
      noPrivileges: req.noPrivileges ?? false,
      ...(req.verify !== undefined ? { verify: req.verify } : {}),
      ...(req.countRows === true ? { countRows: true } : {}),
    },
  }
}

/**
 * Inside a directory-format dump pg_dump compresses the files itself, so what works depends on its version
 * (zstd needs 16+). A compression the user asked for and this pg_dump lacks is a usage error, raised before
 * anything is recorded; the default is replaced by the best this pg_dump has (gzip), and a note says so.
 */
export function fitCompressionToPgDump (r: ResolvedRequest, pgDump: Pick<PgTool, 'major' | 'version'>): ResolvedRequest {
  if (r.format !== 'directory' || directoryCompressionSupported(r.compression, pgDump.major)) return r
  const why = `pg_dump ${pgDump.version} cannot write ${r.compression} into a directory-format dump (pg_dump 16+ can)`
  if (r.compressionChosen) throw new InvalidInputError(`compression: ${why}; use gzip or none`, 'compression')
  const range = LEVEL_RANGE.gzip
  if (r.levelChosen && (r.level < range.min || r.level > range.max)) {
    throw new InvalidInputError(`level: the default compression here is gzip (${why}), whose level must be between ${range.min} and ${range.max}`, 'level')
  }
  const level = r.levelChosen ? r.level : DEFAULT_LEVEL.gzip
  return { ...r, compression: 'gzip', level, notes: [...r.notes, `compression gzip level ${level}: the default, ${r.compression}, is not available because ${why}`] }
}

import { Compile } from 'typebox/compile'
import { CreateBackupRequest, type Backup, type BackupOptions } from '../../schemas/backup.ts'
import type { Config, Target } from '../config.ts'
import { checkLevel, DEFAULT_LEVEL } from './pg/codec.ts'
import { InvalidInputError } from '../errors.ts'

const checkRequest = Compile(CreateBackupRequest)

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
}

/**
 * Checks a create request against the schema and the rules the schema cannot say (combinations,
 * levels per compression, known targets), and fills in defaults: custom format, zstd level 3.
 */
export function resolveCreateRequest (req: unknown, config: Config): ResolvedRequest {
  if (!checkRequest.Check(req)) throw describeSchemaError(req)
  const targetName = req.target ?? (config.targets.default ? 'default' : Object.keys(config.targets)[0])
  const target = targetName === undefined ? undefined : config.targets[targetName]
  if (!target) {
    throw new InvalidInputError(`target: unknown target "${req.target}"; configured: ${Object.keys(config.targets).join(', ') || 'none'}`, 'target')
  }
  const format = req.format ?? 'custom'
  const compression = req.compression ?? 'zstd'
  if (req.level !== undefined && compression === 'none') throw new InvalidInputError('level: cannot be set when compression is none', 'level')
  const level = req.level ?? DEFAULT_LEVEL[compression]
  checkLevel(compression, level)
  if (req.schemaOnly && req.dataOnly) throw new InvalidInputError('schemaOnly and dataOnly cannot both be set', 'dataOnly')
  if (req.jobs !== undefined && req.jobs > 1 && format !== 'directory') {
    throw new InvalidInputError('jobs: parallel dumps need the directory format', 'jobs')
  }
  return {
    target,
    format,
    compression,
    level,
    name: req.name,
    options: {
      schemaOnly: req.schemaOnly ?? false,
      dataOnly: req.dataOnly ?? false,
      schemas: req.schemas ?? [],
      excludeTables: req.excludeTables ?? [],
      jobs: req.jobs ?? 1,
      noOwner: req.noOwner ?? false,
      noPrivileges: req.noPrivileges ?? false,
    },
  }
}

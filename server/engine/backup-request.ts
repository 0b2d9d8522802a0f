import { Compile } from 'typebox/compile'
import { CreateBackupRequest, type Backup, type BackupOptions } from '../../schemas/backup.ts'
import { createRuleProblems, DEFAULT_COMPRESSION, DEFAULT_FORMAT, DEFAULT_LEVEL } from '../../schemas/create-rules.ts'
import type { Config, Target } from '../config.ts'
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
  return {
    target,
    format: req.format ?? DEFAULT_FORMAT,
    compression,
    level: req.level ?? DEFAULT_LEVEL[compression],
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

import { TARGET_NAME_PATTERN } from '../schemas/backup.ts'

/**
 * Turns the schema checker's findings about the config file into the line an admin reads: the field as
 * they would write it (`schedules[2].backup.level`, `targets.main.port`) and what is wrong in plain words,
 * instead of a JSON pointer and a pattern.
 */

/** The part of a TypeBox validation error we read. */
export interface SchemaError {
  keyword: string
  instancePath: string
  params: unknown
  message: string
}

export interface ConfigProblem {
  /** empty for the file as a whole */
  field: string
  why: string
}

const NAME_RULE = 'must start with a letter or digit and contain only letters, digits, "_" or "-" (at most 63 characters)'

/** `/schedules/2/backup/level` -> `schedules[2].backup.level` */
export function fieldPath (pointer: string): string {
  return pointer.split('/').filter(Boolean)
    .map(part => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => {
      if (/^\d+$/.test(part)) return `${path}[${part}]`
      const key = /^[A-Za-z_][A-Za-z0-9_]*$/.test(part) ? part : JSON.stringify(part)
      return path === '' ? key : `${path}.${key}`
    }, '')
}

/** The most useful of the checker's errors (it lists every branch of a union), in plain words: the config file's and the API's. */
export function describeSchemaErrors (errors: SchemaError[]): ConfigProblem {
  const extra = errors.find(e => e.keyword === 'additionalProperties')
  if (extra) {
    const names = (extra.params as { additionalProperties?: string[] }).additionalProperties ?? []
    return { field: fieldPath(extra.instancePath), why: `unknown field${names.length === 1 ? '' : 's'} ${names.map(n => `"${n}"`).join(', ')}` }
  }
  const choices = errors.filter(e => e.keyword === 'const')
  if (choices.length > 0) {
    const at = choices[0].instancePath
    const allowed = choices.filter(e => e.instancePath === at).map(e => JSON.stringify((e.params as { allowedValue?: unknown }).allowedValue))
    return { field: fieldPath(at), why: `must be one of ${allowed.join(', ')}` }
  }
  const first = errors.find(e => e.keyword !== 'anyOf' && e.keyword !== 'boolean') ?? errors[0]
  if (first === undefined) return { field: '', why: 'does not match the expected format' }
  return { field: fieldPath(first.instancePath), why: plainWords(first) }
}

function plainWords (e: SchemaError): string {
  const params = e.params as { type?: string, limit?: number, requiredProperties?: string[], pattern?: string }
  switch (e.keyword) {
    case 'type': return params.type === 'integer' ? 'must be a whole number' : `must be ${params.type === 'array' || params.type === 'object' ? 'an' : 'a'} ${params.type}`
    case 'required': return `is missing ${(params.requiredProperties ?? []).map(p => `"${p}"`).join(', ')}`
    case 'minimum': return `must be at least ${params.limit}`
    case 'maximum': return `must be at most ${params.limit}`
    case 'exclusiveMinimum': return `must be greater than ${params.limit}`
    case 'exclusiveMaximum': return `must be less than ${params.limit}`
    case 'minLength': return params.limit === 1 ? 'must not be empty' : `must be at least ${params.limit} characters`
    case 'maxLength': return `must be at most ${params.limit} characters`
    case 'maxItems': return `must have at most ${params.limit} entries`
    case 'minItems': return params.limit === 1 ? 'must not be empty' : `must have at least ${params.limit} entries`
    case 'pattern':
      if (params.pattern === '^https?://') return 'must be an http:// or https:// URL'
      if (params.pattern === TARGET_NAME_PATTERN) return NAME_RULE
      return 'is not in the expected form'
    default: return e.message
  }
}

/** Names (targets, schedules) share one rule; a record's keys are not checked by the schema. */
export function nameProblem (name: string): string | undefined {
  return new RegExp(TARGET_NAME_PATTERN).test(name) ? undefined : NAME_RULE
}

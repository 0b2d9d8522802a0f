/**
 * Client-side checks of a create request with the server's own rules: patterns and limits are
 * read from the CreateBackupRequest schema itself and the cross-field rules from create-rules.ts
 * (never copied), so the two cannot drift apart.
 * Compiling the schema would say "must match pattern"; these messages tell the user what to type.
 */
import { BACKUP_NAME_PATTERN, CreateBackupRequest, TARGET_NAME_PATTERN, type BackupFormat, type Compression } from '../../../schemas/backup.ts'
import {
  createRuleProblems, DEFAULT_COMPRESSION, DEFAULT_FORMAT, JOBS_RANGE, LEVEL_RANGE, type CreateRuleProblem,
} from '../../../schemas/create-rules.ts'

export interface CreateForm {
  target: string
  name: string
  format: BackupFormat
  compression: Compression
  level: string
  schemaOnly: boolean
  dataOnly: boolean
  /** one pattern per line */
  schemas: string
  excludeTables: string
  jobs: string
}

export type CreateField = keyof CreateForm
export type FieldErrors = Partial<Record<CreateField, string>>

/** The JSON-Schema keywords we read; TypeBox's static types don't expose them on every kind. */
export interface Limits { minimum?: number, maximum?: number, maxLength?: number, maxItems?: number, pattern?: string, items?: unknown }
export const limitsOf = (schema: unknown): Limits => schema as Limits

const props = CreateBackupRequest.properties
const PATTERN_ITEM = limitsOf(limitsOf(props.schemas).items)
const PG_PATTERN_MAX_LENGTH = PATTERN_ITEM.maxLength ?? 200
const SCHEMAS_MAX_ITEMS = limitsOf(props.schemas).maxItems ?? 100
const EXCLUDE_TABLES_MAX_ITEMS = limitsOf(props.excludeTables).maxItems ?? 1000

const nameRe = new RegExp(BACKUP_NAME_PATTERN)
const targetRe = new RegExp(TARGET_NAME_PATTERN)
const patternRe = new RegExp(PATTERN_ITEM.pattern ?? '.*')

export function defaultForm (): CreateForm {
  return { target: '', name: '', format: DEFAULT_FORMAT, compression: DEFAULT_COMPRESSION, level: '', schemaOnly: false, dataOnly: false, schemas: '', excludeTables: '', jobs: '' }
}

function lines (text: string): string[] {
  return text.split('\n').map(s => s.trim()).filter(Boolean)
}

function checkPatterns (list: string[], maxItems: number, what: string): string | undefined {
  if (list.length > maxItems) return `At most ${maxItems} ${what}.`
  const bad = list.find(p => p.length > PG_PATTERN_MAX_LENGTH || !patternRe.test(p))
  if (bad !== undefined) return `"${bad.slice(0, 40)}" is not a valid pattern (at most ${PG_PATTERN_MAX_LENGTH} characters, no control characters).`
  return undefined
}

function wholeNumber (raw: string): number | undefined {
  return /^\d+$/.test(raw.trim()) ? Number(raw) : undefined
}

function intIn (raw: string, min: number, max: number): number | undefined {
  const n = wholeNumber(raw)
  return n !== undefined && n >= min && n <= max ? n : undefined
}

function levelWording (compression: keyof typeof LEVEL_RANGE): string {
  const { min, max } = LEVEL_RANGE[compression]
  return `${compression} level must be a whole number from ${min} to ${max}.`
}

/** The shared create rules in the words of the form's fields. */
function formWording (problem: CreateRuleProblem): string {
  switch (problem.rule) {
    // the level input is disabled for none and its value left out, so this is a safety net
    case 'level-without-compression': return 'Without compression there is no level to set.'
    case 'level-out-of-range': return levelWording(problem.compression)
    case 'schema-only-with-data-only': return 'Choose schema only or data only, not both.'
    case 'jobs-without-directory': return 'Parallel jobs need the directory format.'
    case 'all-databases-with-databases': return 'All databases, or a list of databases: not both.'
    case 'set-with-schemas': return 'A set of whole databases cannot be limited to schemas.'
  }
}

/** Returns the request to send, or the errors by field. */
export function buildCreateRequest (f: CreateForm): { request?: CreateBackupRequest, errors: FieldErrors } {
  const errors: FieldErrors = {}
  const req: CreateBackupRequest = { format: f.format, compression: f.compression }

  const target = f.target.trim()
  if (target) {
    if (targetRe.test(target)) req.target = target
    else errors.target = 'A target name is letters, digits, "_" or "-", starting with a letter or digit (at most 63).'
  }
  const name = f.name.trim()
  if (name) {
    if (nameRe.test(name)) req.name = name
    else errors.name = 'Use letters, digits, ".", "_" or "-", starting with a letter or digit (at most 100 characters).'
  }
  if (f.level.trim() && f.compression !== 'none') {
    const level = wholeNumber(f.level)
    if (level === undefined) errors.level = levelWording(f.compression)
    else req.level = level
  }
  if (f.schemaOnly) req.schemaOnly = true
  if (f.dataOnly) req.dataOnly = true

  const schemas = lines(f.schemas)
  const schemasError = checkPatterns(schemas, SCHEMAS_MAX_ITEMS, 'schemas')
  if (schemasError) errors.schemas = schemasError
  else if (schemas.length) req.schemas = schemas
  const excluded = lines(f.excludeTables)
  const excludedError = checkPatterns(excluded, EXCLUDE_TABLES_MAX_ITEMS, 'excluded tables')
  if (excludedError) errors.excludeTables = excludedError
  else if (excluded.length) req.excludeTables = excluded

  if (f.jobs.trim()) {
    const jobs = intIn(f.jobs, JOBS_RANGE.min, JOBS_RANGE.max)
    if (jobs === undefined) errors.jobs = `Jobs must be a whole number from ${JOBS_RANGE.min} to ${JOBS_RANGE.max}.`
    else req.jobs = jobs
  }
  for (const problem of createRuleProblems(req)) {
    // the form sends no list of databases, so that rule cannot be broken here
    if (problem.field !== 'databases') errors[problem.field] ??= formWording(problem)
  }
  return Object.keys(errors).length ? { errors } : { request: req, errors }
}

const FIELDS: CreateField[] = ['excludeTables', 'schemaOnly', 'dataOnly', 'compression', 'format', 'target', 'level', 'jobs', 'schemas', 'name']

/**
 * Which form field a server error is about: schema errors say "body.level: must be ...",
 * domain errors tend to name the field in words ("backup name ... already exists").
 */
export function fieldOfServerError (message: string): CreateField | undefined {
  const path = /(?:body)?[/.]([A-Za-z]+)/.exec(message)?.[1]
  if (path && (FIELDS as string[]).includes(path)) return path as CreateField
  const property = /property ['"]?([A-Za-z]+)/.exec(message)?.[1]
  if (property && (FIELDS as string[]).includes(property)) return property as CreateField
  return FIELDS.find(f => new RegExp(`\\b${f}\\b`, 'i').test(message))
}

/**
 * The rules of a create request that one field's schema cannot say, stated once for the engine, the CLI
 * and the dashboard. Pure and free of node: imports, so the browser bundle can take it as it is.
 * Each door reports a problem in its own words (flags, form fields, API fields) from the `rule` it names.
 */
import type { CreateBackupRequest } from './backup.ts'
import { DEFAULT_COMPRESSION, DEFAULT_FORMAT, LEVEL_RANGE, type Bounds } from './format.ts'

export { ANY_LEVEL, DEFAULT_COMPRESSION, DEFAULT_FORMAT, DEFAULT_LEVEL, JOBS_RANGE, LEVEL_RANGE, type Bounds } from './format.ts'

export type CreateRuleProblem =
  | { rule: 'level-without-compression', field: 'level', message: string }
  | { rule: 'level-out-of-range', field: 'level', message: string, compression: keyof typeof LEVEL_RANGE, range: Bounds }
  | { rule: 'schema-only-with-data-only', field: 'dataOnly', message: string }
  | { rule: 'jobs-without-directory', field: 'jobs', message: string }
  | { rule: 'all-databases-with-databases', field: 'databases', message: string }
  | { rule: 'set-with-schemas', field: 'schemas', message: string }

export type CreateRuleInput = Pick<CreateBackupRequest, 'format' | 'compression' | 'level' | 'schemaOnly' | 'dataOnly' | 'jobs' | 'allDatabases' | 'databases' | 'schemas'>

/**
 * Every cross-field rule the request breaks, always in the same order (level, scope, jobs, set), so each door
 * reports the same first problem; empty when it keeps them all. Absent format and compression count as
 * their defaults. `message` is the API's wording.
 */
export function createRuleProblems (req: CreateRuleInput): CreateRuleProblem[] {
  const format = req.format ?? DEFAULT_FORMAT
  const compression = req.compression ?? DEFAULT_COMPRESSION
  const problems: CreateRuleProblem[] = []
  if (req.level !== undefined) {
    if (compression === 'none') {
      problems.push({ rule: 'level-without-compression', field: 'level', message: 'level: cannot be set when compression is none' })
    } else {
      const range = LEVEL_RANGE[compression]
      if (!Number.isInteger(req.level) || req.level < range.min || req.level > range.max) {
        problems.push({
          rule: 'level-out-of-range', field: 'level', compression, range,
          message: `level for ${compression} must be between ${range.min} and ${range.max}`,
        })
      }
    }
  }
  if (req.schemaOnly && req.dataOnly) {
    problems.push({ rule: 'schema-only-with-data-only', field: 'dataOnly', message: 'schemaOnly and dataOnly cannot both be set' })
  }
  // pg_dump runs workers in parallel only into a directory, one file per table
  if (req.jobs !== undefined && req.jobs > 1 && format !== 'directory') {
    problems.push({ rule: 'jobs-without-directory', field: 'jobs', message: 'jobs: parallel dumps need the directory format' })
  }
  if (req.allDatabases && req.databases !== undefined) {
    problems.push({ rule: 'all-databases-with-databases', field: 'databases', message: 'databases: cannot be given with allDatabases (which takes every database of the server)' })
  }
  // -n patterns name schemas of one database; over a set pg_dump would fail on every database without them
  if ((req.allDatabases || req.databases !== undefined) && (req.schemas?.length ?? 0) > 0) {
    problems.push({ rule: 'set-with-schemas', field: 'schemas', message: 'schemas: a backup set dumps whole databases; -n patterns need a single-database backup' })
  }
  return problems
}

import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { DrillAssertion, DrillConfig, DrillSchedule } from '../schemas/drill.ts'
import type { ConfigFile } from '../schemas/config.ts'
import { PgkeepError } from './errors.ts'
import { cronProblem } from './schedules/schedule-rules.ts'

/** How a target's backups are drilled (docs/drills.md): where they are restored and what is asserted there. */
export interface DrillSettings<T extends Connection = Connection> {
  /** the drill server's connection (its database is only where pgkeep connects to create and drop the scratch one) */
  server: T
  /** true when `drill.url` names another server than the target's own */
  ownServer: boolean
  assertions: DrillAssertion[]
  statementTimeoutMs: number
  /** how far restored row counts may stray from reltuples estimates (a fraction) */
  estimateTolerance: number
}

/** What this file needs of a connection (config.ts's Target, which it cannot import: config.ts imports this). */
interface Connection { name: string, host: string, port: number, user: string, database: string, password?: string }

const DEFAULT_STATEMENT_TIMEOUT_SECONDS = 60
const DEFAULT_ESTIMATE_TOLERANCE = 0.1

function fail (name: string, why: string): never {
  throw new PgkeepError('CONFIG_INVALID', `invalid configuration: ${name}: ${why}`)
}


/**
 * Each target's drill settings: its own `drill` over the global one, field by field. Without a url the drill
 * runs on the target's own server (docs/drills.md says what that costs it).
 */
export function drillSettings<T extends Connection> (file: ConfigFile, targets: Record<string, T>, parseUrl: (name: string, url: string, field: string) => T, baseDir: string): Record<string, DrillSettings<T>> {
  const global = file.drill ?? {}
  const out: Record<string, DrillSettings<T>> = {}
  for (const [name, target] of Object.entries(targets)) {
    const own = file.targets?.[name]?.drill ?? {}
    const field = own.url !== undefined ? `targets.${name}.drill` : 'drill'
    const merged: DrillConfig = { ...global, ...own }
    const assertions = own.assertions ?? global.assertions ?? []
    checkAssertions(assertions, own.assertions !== undefined ? `targets.${name}.drill.assertions` : 'drill.assertions')
    let server = target
    let ownServer = false
    if (merged.url !== undefined) {
      server = parseUrl(name, merged.url, `${field}.url`)
      ownServer = true
      if (merged.passwordFile !== undefined) {
        try {
          server = { ...server, password: readFileSync(resolve(baseDir, merged.passwordFile), 'utf8').replace(/\r?\n$/, '') }
        } catch {
          fail(`${field}.passwordFile`, 'cannot be read')
        }
      }
    }
    out[name] = {
      server,
      ownServer,
      assertions,
      statementTimeoutMs: (merged.statementTimeoutSeconds ?? DEFAULT_STATEMENT_TIMEOUT_SECONDS) * 1000,
      estimateTolerance: merged.estimateTolerance ?? DEFAULT_ESTIMATE_TOLERANCE,
    }
  }
  return out
}

function checkAssertions (assertions: DrillAssertion[], field: string): void {
  const seen = new Set<string>()
  for (const [i, a] of assertions.entries()) {
    if (seen.has(a.name)) fail(`${field}[${i}].name`, `"${a.name}" is used by an earlier assertion`)
    seen.add(a.name)
    if (a.sql.trim() === '') fail(`${field}[${i}].sql`, 'is empty')
  }
}

/** `drills`: each names a configured target and a cron pattern croner takes. */
export function drillSchedules (file: ConfigFile, targetNames: string[]): DrillSchedule[] {
  const schedules = file.drills ?? []
  for (const [i, s] of schedules.entries()) {
    if (!targetNames.includes(s.target)) fail(`drills[${i}].target`, `unknown target "${s.target}" (configured: ${targetNames.join(', ')})`)
    const problem = cronProblem(s.cron, s.timezone)
    if (problem) fail(`drills[${i}].${problem.field}`, problem.why)
  }
  return schedules
}

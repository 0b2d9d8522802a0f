import { Cron } from 'croner'
import type { CreateBackupRequest, RetentionPolicy } from '../../schemas/backup.ts'
import { createRuleProblems } from '../../schemas/create-rules.ts'

/** One broken rule of a schedule: the field, relative to the schedule (`cron`, `backup.level`), and why in plain words. */
export interface ScheduleProblem {
  field: string
  why: string
}

/** What a schedule says, whether it comes from the config file, the API or schedules.json. */
export interface ScheduleRuleInput {
  cron: string
  timezone?: string
  backup?: CreateBackupRequest
  retention?: RetentionPolicy
}

const RETENTION_RULES = ['keepLast', 'maxAgeDays', 'keepDaily', 'keepWeekly', 'keepMonthly'] as const

/**
 * The first rule a schedule breaks, or undefined. Everything that would otherwise only fail when the
 * schedule fires (a pattern croner refuses, an unknown zone or target, a create request the engine
 * would refuse) is checked here, so the config file and the API refuse it when it is written, with
 * the same words; each door prefixes the field with its own path (`schedules[2].`, or nothing).
 */
export function scheduleProblem (s: ScheduleRuleInput, targetNames: readonly string[]): ScheduleProblem | undefined {
  return cronProblem(s.cron, s.timezone) ??
    backupProblem(s.backup ?? {}, targetNames) ??
    (s.retention ? retentionProblem(s.retention) : undefined)
}

/** A cron pattern and its zone: 5 fields, or 6 with leading seconds, in a zone the runtime knows. */
export function cronProblem (pattern: string, timezone?: string): ScheduleProblem | undefined {
  if (timezone !== undefined && !isKnownTimeZone(timezone)) return { field: 'timezone', why: `unknown time zone "${timezone}"` }
  const fields = pattern.trim().split(/\s+/).filter(Boolean).length
  // croner's nicknames (@daily, @hourly...) are one word
  if (!pattern.trim().startsWith('@') && fields !== 5 && fields !== 6) {
    return { field: 'cron', why: `"${pattern}" has ${fields} field${fields === 1 ? '' : 's'}, expected 5 (minute hour day month weekday) or 6 (seconds first)` }
  }
  let cron: Cron
  try {
    cron = new Cron(pattern, { timezone, paused: true })
  } catch (err) {
    if (pattern.trim().startsWith('@')) return { field: 'cron', why: `"${pattern}" is not one of @yearly, @monthly, @weekly, @daily, @hourly` }
    // croner's words, on one line and without its "CronPattern:" prefix
    const why = ((err as Error).message.split('\n')[0] ?? '').replace(/^CronPattern:\s*/, '').replace(/\.$/, '')
    return { field: 'cron', why: `"${pattern}": ${why.charAt(0).toLowerCase()}${why.slice(1)}` }
  }
  const next = cron.nextRun()
  cron.stop()
  if (next === null) return { field: 'cron', why: `"${pattern}" never fires` }
  return undefined
}

/** The checks the engine makes when a backup is created (target, create rules), made when it is scheduled. */
function backupProblem (backup: CreateBackupRequest, targetNames: readonly string[]): ScheduleProblem | undefined {
  if (backup.target !== undefined && !targetNames.includes(backup.target)) {
    return { field: 'backup.target', why: `unknown target "${backup.target}"; configured: ${targetNames.join(', ') || 'none'}` }
  }
  const [problem] = createRuleProblems(backup)
  if (problem) {
    // the shared rule's own words, minus the field name it may start with: the path names it
    return { field: `backup.${problem.field}`, why: problem.message.replace(new RegExp(`^${problem.field}: `), '') }
  }
  return undefined
}

function retentionProblem (policy: RetentionPolicy): ScheduleProblem | undefined {
  if (RETENTION_RULES.some(rule => policy[rule] !== undefined)) return undefined
  return { field: 'retention', why: `the policy is empty: set ${RETENTION_RULES.slice(0, -1).join(', ')} or ${RETENTION_RULES.at(-1)}` }
}

function isKnownTimeZone (zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone })
    return true
  } catch {
    return false
  }
}

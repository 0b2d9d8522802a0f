import { compileOnUse } from '../../compile-on-use.ts'
import { RetentionPolicy, type Backup } from '../../../schemas/backup.ts'
import { InvalidInputError } from '../../errors.ts'

const checkPolicy = compileOnUse(RetentionPolicy)
const RULES = ['keepLast', 'maxAgeDays', 'keepDaily', 'keepWeekly', 'keepMonthly'] as const
const DAY_MS = 86_400_000

/** Refuses an empty policy: "keep nothing" is never what an admin meant, and would delete every backup but the newest. */
export function validatePolicy (policy: RetentionPolicy | undefined): RetentionPolicy {
  if (policy === undefined || policy === null) {
    throw new InvalidInputError('retention policy is empty: set keepLast, maxAgeDays, keepDaily, keepWeekly or keepMonthly', 'policy')
  }
  if (!checkPolicy.Check(policy)) {
    const e = [...checkPolicy.Errors(policy)][0]
    const field = e?.instancePath.replace(/^\//, '') || 'policy'
    throw new InvalidInputError(`retention policy ${field}: ${e?.message ?? 'is invalid'}`, field === 'policy' ? 'policy' : `policy.${field}`)
  }
  const out: RetentionPolicy = {}
  for (const rule of RULES) if (policy[rule] !== undefined) out[rule] = policy[rule]
  if (Object.keys(out).length === 0) {
    throw new InvalidInputError('retention policy is empty: set keepLast, maxAgeDays, keepDaily, keepWeekly or keepMonthly', 'policy')
  }
  return out
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0')

function dayKey (d: Date): string {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
}

function monthKey (d: Date): string {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`
}

/** ISO 8601 week (Monday first; week 1 holds the year's first Thursday), e.g. 2026-12-31 and 2027-01-01 are both 2026-W53. */
export function isoWeekKey (d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()))
  const weekday = t.getUTCDay() || 7
  // The Thursday of this week decides which ISO year the week belongs to.
  t.setUTCDate(t.getUTCDate() + 4 - weekday)
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1)
  const week = Math.ceil(((t.getTime() - yearStart) / DAY_MS + 1) / 7)
  return `${t.getUTCFullYear()}-W${pad(week)}`
}

function createdMs (b: Backup): number {
  const ms = Date.parse(b.createdAt)
  return Number.isNaN(ms) ? -Infinity : ms
}

/** Newest first; the id (UUIDv7, time-ordered) breaks ties so the plan never depends on input order. */
function newestFirst (a: Backup, b: Backup): number {
  const d = createdMs(b) - createdMs(a)
  if (d !== 0) return d
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0
}

/**
 * What a backup holds, in pg_dump's words: 'full', 'schema-only', 'data-only', followed by its -n / -T
 * selection ('-n billing', 'schema-only -T public.log'). Backups with the same label of one target's database
 * form a series, and retention counts each series apart (like restic's grouping by paths): otherwise cheap
 * partial backups, newer than every full one, would use up keep-last and push the full backups out.
 */
export function seriesLabel (b: Backup): string {
  const o = b.options
  const parts = [o.schemaOnly ? 'schema-only' : o.dataOnly ? 'data-only' : '']
  for (const s of [...o.schemas].sort()) parts.push(`-n ${s}`)
  for (const s of [...o.excludeTables].sort()) parts.push(`-T ${s}`)
  return parts.filter(p => p !== '').join(' ') || 'full'
}

/**
 * What a retention run deletes and why it keeps the rest. Pure and deterministic: the dry run and the real run
 * call this same function. Rules, applied to each series separately (one target's database, one selection: see
 * seriesLabel), on `completed` backups only (nothing else is ever deleted, nor counted by a rule), ordered newest
 * first by createdAt:
 * - keepLast N: the N newest.
 * - maxAgeDays D: every backup created less than D days before `now`.
 * - keepDaily / keepWeekly / keepMonthly N (restic / pgBackRest semantics): walk the backups newest first and
 *   bucket them by UTC day / ISO week / UTC month; the newest backup of each of the N most recent buckets that
 *   hold a backup is kept. Buckets without backups are not counted, so a gap never uses up the allowance.
 * - always: pinned backups, and the newest completed backup of each series (so the newest full backup of each
 *   target, whatever partial backups came after it).
 * A backup is kept when any rule keeps it (its reasons list every rule that did) and deleted otherwise.
 */
export function planRetention (backups: Backup[], policy: RetentionPolicy, now: Date, opts?: { target?: string }): {
  delete: Backup[]
  deleteReasons: Map<string, string>
  keep: { backup: Backup, reasons: string[] }[]
} {
  const p = validatePolicy(policy)
  const bySeries = new Map<string, { label: string, list: Backup[] }>()
  for (const b of backups) {
    if (b.status !== 'completed') continue
    if (opts?.target !== undefined && b.target !== opts.target) continue
    const label = seriesLabel(b)
    // NUL cannot occur in a target name nor in a PostgreSQL name: the key cannot be forged by a clever label
    const key = `${b.target}\0${b.database}\0${label}`
    const series = bySeries.get(key) ?? { label, list: [] }
    series.list.push(b)
    bySeries.set(key, series)
  }

  const reasons = new Map<Backup, string[]>()
  /** id -> why no rule keeps it: the audit log and the reply say it, so a deletion can be explained later */
  const deleteReasons = new Map<string, string>()
  const policyText = RULES.filter(r => p[r] !== undefined).map(r => `${r} ${p[r]}`).join(', ')
  const keepFor = (b: Backup, reason: string): void => { reasons.get(b)?.push(reason) }
  for (const { label, list } of bySeries.values()) {
    list.sort(newestFirst)
    for (const b of list) reasons.set(b, [])
    keepFor(list[0], `newest ${label} of target`)
    list.forEach((b, i) => {
      if (b.pinned) keepFor(b, 'pinned')
      if (p.keepLast !== undefined && i < p.keepLast) keepFor(b, `last ${p.keepLast}`)
      if (p.maxAgeDays !== undefined && now.getTime() - createdMs(b) < p.maxAgeDays * DAY_MS) keepFor(b, `younger than ${p.maxAgeDays} days`)
    })
    const buckets: [number | undefined, string, (d: Date) => string][] = [
      [p.keepDaily, 'daily', dayKey], [p.keepWeekly, 'weekly', isoWeekKey], [p.keepMonthly, 'monthly', monthKey],
    ]
    for (const [count, period, keyOf] of buckets) {
      if (count === undefined) continue
      const seen = new Set<string>()
      for (const b of list) {
        if (seen.size >= count) break
        const ms = createdMs(b)
        if (!Number.isFinite(ms)) continue
        const key = keyOf(new Date(ms))
        if (seen.has(key)) continue
        seen.add(key)
        keepFor(b, `${period} ${key}`)
      }
    }
    list.forEach((b, i) => {
      if (reasons.get(b)?.length !== 0) return
      const days = Math.floor((now.getTime() - createdMs(b)) / DAY_MS)
      deleteReasons.set(b.id, `${label} backup #${i + 1} of target (newest first), ${days} days old; kept by none of ${policyText}`)
    })
  }

  const all = [...reasons.keys()].sort(newestFirst)
  return {
    delete: all.filter(b => reasons.get(b)?.length === 0),
    deleteReasons,
    keep: all.filter(b => (reasons.get(b)?.length ?? 0) > 0).map(b => ({ backup: b, reasons: reasons.get(b) ?? [] })),
  }
}

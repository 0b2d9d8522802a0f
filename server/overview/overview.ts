import type { Backup } from '../../schemas/backup.ts'
import type { Overview, StoragePoint, TargetOverview } from '../../schemas/overview.ts'
import type { Schedule } from '../../schemas/schedule.ts'

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS
/** the storage curve keeps at most this many points: enough for a sparkline and a chart, never the whole registry */
const MAX_POINTS = 200

export interface OverviewInput {
  targets: string[]
  /** every backup of the registry */
  backups: Backup[]
  schedules: Schedule[]
  staleAfterHours: (target: string) => number
  now: Date
  /** the target a backup request without one goes to */
  defaultTarget?: string
}

/**
 * A drill result on a backup, if the drills feature recorded one: read loosely so this overview works before and
 * after drills exist (the field is theirs to define; we take `at` and `ok` only).
 */
function drillOf (b: Backup): { at: string, ok: boolean } | undefined {
  const d = (b as Backup & { drill?: { at?: unknown, ok?: unknown } }).drill
  return d && typeof d.at === 'string' && typeof d.ok === 'boolean' ? { at: d.at, ok: d.ok } : undefined
}

const endedAt = (b: Backup): string => b.finishedAt ?? b.createdAt

function thin (points: StoragePoint[]): StoragePoint[] {
  if (points.length <= MAX_POINTS) return points
  const step = points.length / MAX_POINTS
  const out = Array.from({ length: MAX_POINTS - 1 }, (_, i) => points[Math.floor(i * step)])
  out.push(points[points.length - 1])
  return out
}

function targetOverview (target: string, mine: Backup[], input: OverviewInput): TargetOverview {
  const now = input.now.getTime()
  const completed = mine.filter(b => b.status === 'completed').sort((a, b) => a.createdAt.localeCompare(b.createdAt))
  const newest = completed.reduce<Backup | undefined>((n, b) => !n || endedAt(b) > endedAt(n) ? b : n, undefined)
  const staleAfterHours = input.staleAfterHours(target)
  const ageSeconds = newest ? Math.max(0, (now - Date.parse(endedAt(newest))) / 1000) : undefined
  const stale = staleAfterHours > 0 && (ageSeconds === undefined || ageSeconds > staleAfterHours * 3600)

  const failed = mine.filter(b => b.status === 'failed' && now - Date.parse(endedAt(b)) < DAY_MS)
    .sort((a, b) => endedAt(b).localeCompare(endedAt(a)))

  const runs = input.schedules
    .filter(s => s.enabled && (s.backup.target ?? input.defaultTarget ?? 'default') === target && s.nextRuns.length > 0)
    .map(s => ({ at: s.nextRuns[0], schedule: s.name }))
    .sort((a, b) => a.at.localeCompare(b.at))

  let drill: TargetOverview['lastDrill']
  for (const b of mine) {
    const d = drillOf(b)
    if (d && (!drill || d.at > drill.at)) drill = { ...d, backupId: b.id }
  }

  let total = 0
  const points = completed.map(b => ({ at: b.createdAt, bytes: (total += b.sizeBytes ?? 0) }))
  const weekAgo = new Date(now - 7 * DAY_MS).toISOString()
  const bytesWeekAgo = completed.filter(b => b.createdAt <= weekAgo).reduce((s, b) => s + (b.sizeBytes ?? 0), 0)

  const lastFailure = failed[0]
  return {
    target,
    ...(newest && ageSeconds !== undefined
      ? { lastCompleted: { id: newest.id, name: newest.name, finishedAt: endedAt(newest), ageSeconds, ...(newest.sizeBytes !== undefined ? { sizeBytes: newest.sizeBytes } : {}) } }
      : {}),
    stale,
    staleAfterHours,
    ...(runs[0] ? { nextRun: runs[0] } : {}),
    ...(drill ? { lastDrill: drill } : {}),
    failures24h: failed.length,
    ...(lastFailure ? { lastFailure: { id: lastFailure.id, at: endedAt(lastFailure), code: lastFailure.error?.code ?? 'FAILED', message: lastFailure.error?.message ?? '' } } : {}),
    storage: { bytes: total, backups: completed.length, change7dBytes: total - bytesWeekAgo, points: thin(points) },
  }
}

/**
 * One card per target, answering "are my databases backed up?". Pure: the route hands it the registry, the
 * schedules and the clock. Targets that are no longer configured but still have backups get a card too (their
 * backups still take space).
 */
export function buildOverview (input: OverviewInput): Overview {
  const byTarget = new Map<string, Backup[]>(input.targets.map(t => [t, []]))
  for (const b of input.backups) byTarget.set(b.target, [...(byTarget.get(b.target) ?? []), b])
  return {
    generatedAt: input.now.toISOString(),
    targets: [...byTarget].map(([target, mine]) => targetOverview(target, mine, input)),
  }
}

import { EventEmitter } from 'node:events'
import { isDeepStrictEqual } from 'node:util'
import { Cron } from 'croner'
import {
  TERMINAL_STATUSES, type Backup, type CleanupRequest, type CleanupResult, type CreateBackupRequest, type RetentionPolicy,
} from '../../schemas/backup.ts'
import type { MissedRun, Schedule, ScheduleCreate, SchedulePatch } from '../../schemas/schedule.ts'
import type { BackupSet } from '../../schemas/sets.ts'
import type { Config } from '../config.ts'
import { InvalidInputError, NotFoundError, PgkeepError, toPgkeepError } from '../errors.ts'
import { cronProblem, scheduleProblem } from './schedule-rules.ts'
import { ScheduleStore, type ScheduleState, type StoredSchedule, type StoredSchedules } from './schedule-store.ts'
import { AuditTrail, DeletionLog, type AuditSink } from '../audit/audit-trail.ts'

/** The subset of BackupService a scheduler drives. */
export interface ScheduledBackupService {
  create (req: CreateBackupRequest, createdBy: string, extra?: { scheduleId?: string }): Promise<Backup>
  waitFor (id: string): Promise<Backup>
  get (id: string): Backup
  /** a run whose create made a set (a whole-server target) is the whole set: waited for, and done, as one */
  waitForSet (setId: string): Promise<BackupSet>
  getSet (setId: string): BackupSet
  cleanup (req: CleanupRequest, opts?: { onDeleted?: (backup: Backup, reason: string) => void }): Promise<CleanupResult>
}

/** Whether this instance runs the tick of `schedule` due at `scheduledAt` (catalog/schedule-ticks.ts with a shared catalog). */
export type TickClaim = (schedule: string, scheduledAt: Date) => Promise<boolean>

export type SchedulerConfig = Pick<Config, 'backupDir' | 'schedules' | 'cleanupCron' | 'retention' | 'targets'>

interface Entry {
  def: StoredSchedule
  source: 'config' | 'api'
  cron?: Cron
}

/** How many upcoming fire times the API shows. */
const NEXT_RUNS = 5
/** A tick this late after its time still counts as on time (timer drift, a busy event loop). */
const GRACE_MS = 2000
/** Who the retention cron acts as in the audit log (it is not a named schedule; this is its config key). */
export const CLEANUP_CRON_ACTOR = 'schedule:cleanupCron'

const nowhere: AuditSink = { append: async () => {} }

/**
 * The audit entry of a scheduled cleanup. One that deleted nothing changed nothing and writes no line (a schedule
 * with retention would otherwise add one after every run); a failed one is always recorded.
 */
async function auditCleanup (trail: AuditTrail, service: ScheduledBackupService, req: CleanupRequest): Promise<CleanupResult> {
  const deletions = new DeletionLog()
  let result: CleanupResult
  try {
    result = await service.cleanup(req, deletions)
  } catch (err) {
    await trail.record('backup.cleanup', { outcome: 'failed', code: toPgkeepError(err).code }, deletions.fields())
    throw err
  }
  if (result.deleted.length > 0) await trail.record('backup.cleanup', { outcome: 'ok' }, deletions.fields())
  return result
}

/**
 * Runs named schedules with croner. One run of a schedule at a time: croner's `protect` covers this
 * process, and the last backup's status covers a run still going after a restart or from elsewhere.
 * A run that makes a set (a whole-server target) ends when its last member does: retention and the overlap check
 * look at the set, not at its first member.
 * Events: 'fired' {schedule, backup}, 'finished' {schedule, backup, set?, retention?}, 'missed' {schedule, missed},
 * 'run-error' {schedule, error}, 'cleanup' {result}, 'cleanup-error' {error}, 'audit-error' {action, error}.
 * Each backup a schedule creates or deletes gets an audit entry by `schedule:<name>` (door `schedule`).
 */
export class Scheduler extends EventEmitter {
  readonly #service: ScheduledBackupService
  readonly #store: StoredSchedules
  readonly #targetNames: string[]
  readonly #audit: AuditSink
  readonly #entries = new Map<string, Entry>()
  readonly #running = new Set<Promise<void>>()
  #cleanupCron?: Cron
  #cleanupUnusable = false
  #closed = false
  /** alone (files), every tick is this instance's */
  #claimTick: TickClaim = async () => true
  #unwatch: () => void = () => {}

  private constructor (service: ScheduledBackupService, store: StoredSchedules, targetNames: string[], audit: AuditSink) {
    super()
    this.#service = service
    this.#store = store
    this.#targetNames = targetNames
    // a run never fails because its audit line could not be written: that is reported on its own
    this.#audit = {
      append: async (entry) => {
        try { await audit.append(entry) } catch (err) { this.emit('audit-error', { action: entry.action, error: toPgkeepError(err) }) }
      },
    }
  }

  /** A schedule acts as `schedule:<name>`: the audit log names it as the one who created or deleted backups. */
  #trail (user: string): AuditTrail {
    return new AuditTrail(this.#audit, { user, door: 'schedule' })
  }

  /**
   * Loads config and stored schedules but starts no timer: call start() once listeners are attached,
   * so missed runs found at start-up reach them. The store (schedules.json in the backups dir unless given, e.g. the
   * shared catalog's) is the scheduler's from then on: close() closes it.
   */
  static async open (service: ScheduledBackupService, config: SchedulerConfig, opts: { audit?: AuditSink, store?: StoredSchedules, claimTick?: TickClaim } = {}): Promise<Scheduler> {
    const store = opts.store ?? await ScheduleStore.open(config.backupDir)
    const scheduler = new Scheduler(service, store, Object.keys(config.targets), opts.audit ?? nowhere)
    if (opts.claimTick) scheduler.#claimTick = opts.claimTick
    for (const [i, c] of config.schedules.entries()) {
      const def: StoredSchedule = {
        name: c.name, cron: c.cron, backup: c.backup ?? {}, enabled: c.enabled ?? true, createdAt: '', createdBy: 'config',
        ...(c.timezone ? { timezone: c.timezone } : {}), ...(c.retention ? { retention: c.retention } : {}),
      }
      // loadConfig() refused these already; a Config built another way gets the same words
      const problem = scheduleProblem(def, scheduler.#targetNames)
      if (problem) throw new PgkeepError('CONFIG_INVALID', `invalid configuration: schedules[${i}].${problem.field}: ${problem.why}`)
      scheduler.#entries.set(c.name, { def, source: 'config' })
    }
    for (const def of scheduler.#store.schedules()) {
      // a config schedule wins over a stored one of the same name: the file is what the admin edits
      if (scheduler.#entries.has(def.name)) continue
      // valid when saved, but the config may have changed since (a target removed): refuse to start
      // rather than fail at every run
      const problem = scheduleProblem(def, scheduler.#targetNames)
      if (problem) {
        throw new PgkeepError('CONFIG_INVALID', `schedule "${def.name}" in ${scheduler.#store.path}: ${problem.field}: ${problem.why}; fix the configuration or remove the schedule from that file`)
      }
      scheduler.#entries.set(def.name, { def, source: 'api' })
    }
    await scheduler.#store.pruneState(new Set(scheduler.#entries.keys()))
    if (config.cleanupCron && config.retention === undefined) {
      scheduler.#cleanupUnusable = true
    } else if (config.cleanupCron) {
      const problem = cronProblem(config.cleanupCron)
      if (problem) throw new PgkeepError('CONFIG_INVALID', `invalid configuration: cleanupCron: ${problem.why}`)
      scheduler.#cleanupCron = new Cron(config.cleanupCron, { protect: true, paused: true }, async () => {
        try {
          scheduler.emit('cleanup', { result: await auditCleanup(scheduler.#trail(CLEANUP_CRON_ACTOR), service, {}) })
        } catch (err) {
          scheduler.emit('cleanup-error', { error: toPgkeepError(err) })
        }
      })
    }
    return scheduler
  }

  async start (): Promise<void> {
    if (this.#cleanupUnusable) {
      this.emit('cleanup-error', { error: new PgkeepError('CONFIG_INVALID', 'cleanupCron is set but no retention policy is configured; the scheduled cleanup will not run') })
    }
    for (const entry of this.#entries.values()) await this.#arm(entry, true)
    this.#cleanupCron?.resume()
    // a store shared with other instances says when one of them created, changed or removed a schedule
    this.#unwatch = this.#store.watch?.(name => {
      void this.#track(this.#follow(name).catch((err: unknown) => { this.emit('run-error', { schedule: name, error: toPgkeepError(err) }) }))
    }) ?? (() => {})
  }

  list (): Schedule[] {
    return [...this.#entries.values()].sort((a, b) => a.def.name.localeCompare(b.def.name)).map(e => this.#view(e))
  }

  get (name: string): Schedule {
    return this.#view(this.#entry(name))
  }

  async create (input: ScheduleCreate, createdBy: string): Promise<Schedule> {
    if (this.#entries.has(input.name)) throw new PgkeepError('CONFLICT', `a schedule named ${input.name} already exists`, { details: { field: 'name' } })
    const def: StoredSchedule = {
      name: input.name, cron: input.cron, backup: input.backup ?? {}, enabled: input.enabled ?? true,
      createdAt: new Date().toISOString(), createdBy,
      ...(input.timezone ? { timezone: input.timezone } : {}), ...(input.retention ? { retention: input.retention } : {}),
    }
    this.#check(def)
    await this.#store.putSchedule(def)
    const entry: Entry = { def, source: 'api' }
    this.#entries.set(def.name, entry)
    await this.#arm(entry, false)
    return this.#view(entry)
  }

  async update (name: string, patch: SchedulePatch): Promise<Schedule> {
    const entry = this.#apiEntry(name)
    const def: StoredSchedule = { ...entry.def, ...patch }
    this.#check(def)
    await this.#store.putSchedule(def)
    entry.def = def
    entry.cron?.stop()
    entry.cron = undefined
    // starts afresh: ticks of the old pattern were all handled live, and runs skipped while disabled
    // were skipped on purpose
    await this.#arm(entry, false)
    return this.#view(entry)
  }

  async remove (name: string): Promise<void> {
    const entry = this.#apiEntry(name)
    entry.cron?.stop()
    this.#entries.delete(name)
    await this.#store.removeSchedule(name)
  }

  /** Stops every timer; runs in progress finish their bookkeeping (their backups belong to the service). */
  async close (): Promise<void> {
    this.#closed = true
    this.#unwatch()
    this.#cleanupCron?.stop()
    for (const e of this.#entries.values()) e.cron?.stop()
    await Promise.allSettled([...this.#running])
    await this.#store.flush()
    await this.#store.close?.()
  }

  /** Takes over what another instance did to an API schedule: created, changed (re-armed afresh) or removed. */
  async #follow (name: string): Promise<void> {
    const entry = this.#entries.get(name)
    // a config schedule wins over a stored one of the same name, as at start-up
    if (this.#closed || entry?.source === 'config') return
    const def = this.#store.schedules().find(s => s.name === name)
    if (entry && def && isDeepStrictEqual(entry.def, def)) return
    entry?.cron?.stop()
    this.#entries.delete(name)
    if (!def) return
    // valid where it was saved, but this instance's config may differ (a target it does not have)
    const problem = scheduleProblem(def, this.#targetNames)
    if (problem) throw new PgkeepError('CONFIG_INVALID', `schedule "${name}" in ${this.#store.path}: ${problem.field}: ${problem.why}; not run by this instance`)
    const next: Entry = { def, source: 'api' }
    this.#entries.set(name, next)
    await this.#arm(next, false)
  }

  /** Refuses at save time what would otherwise fail at every run. */
  #check (def: StoredSchedule): void {
    const problem = scheduleProblem(def, this.#targetNames)
    if (problem) throw new InvalidInputError(`${problem.field}: ${problem.why}`, problem.field)
  }

  #entry (name: string): Entry {
    const entry = this.#entries.get(name)
    if (!entry) throw new NotFoundError(`schedule ${name}`)
    return entry
  }

  #apiEntry (name: string): Entry {
    const entry = this.#entry(name)
    if (entry.source === 'config') throw new PgkeepError('INVALID_STATE', `schedule ${name} is defined in the config file; change it there`)
    return entry
  }

  #view (e: Entry): Schedule {
    const state = this.#store.state(e.def.name)
    const nextRuns = e.cron && e.def.enabled ? e.cron.nextRuns(NEXT_RUNS).map(d => d.toISOString()) : []
    return {
      name: e.def.name,
      cron: e.def.cron,
      ...(e.def.timezone ? { timezone: e.def.timezone } : {}),
      backup: e.def.backup,
      ...(e.def.retention ? { retention: e.def.retention } : {}),
      enabled: e.def.enabled,
      source: e.source,
      ...(e.def.createdAt ? { createdAt: e.def.createdAt, createdBy: e.def.createdBy } : {}),
      nextRuns,
      ...(state?.lastRunAt ? { lastRunAt: state.lastRunAt } : {}),
      ...(state?.lastBackupId ? { lastBackupId: state.lastBackupId } : {}),
      missed: state?.missed ?? [],
    }
  }

  /** Starts the timer; with `detectMissed`, fire times between the last handled one and now are reported. */
  async #arm (entry: Entry, detectMissed: boolean): Promise<void> {
    const name = entry.def.name
    if (this.#closed) return
    if (!entry.def.enabled) {
      // a schedule disabled (e.g. in the config file) owes nothing for the time it spends disabled
      const state = this.#store.state(name)
      if (state) await this.#store.putState(name, { ...state, lastTickAt: new Date().toISOString() })
      return
    }
    const cron = new Cron(entry.def.cron, {
      timezone: entry.def.timezone,
      paused: true,
      protect: () => { void this.#track(this.#overlapped(name, floorSecond(new Date())).catch(() => {})) },
    }, async (job: Cron) => {
      const run = this.#run(name, floorSecond(job.currentRun() ?? new Date()))
        .catch((err: unknown) => { this.emit('run-error', { schedule: name, error: toPgkeepError(err) }) })
      await this.#track(run)
    })
    entry.cron = cron
    const state = this.#store.state(name)
    const now = Date.now()
    if (detectMissed && state) {
      const missedTimes = fireTimesBetween(cron, new Date(state.lastTickAt), new Date(now - GRACE_MS))
      if (missedTimes.count > 0) await this.#recordMissed(name, missedTimes.latest!, 'downtime', missedTimes.count)
    } else {
      await this.#store.putState(name, { ...(state ?? { missed: [] }), lastTickAt: new Date(now).toISOString() })
    }
    cron.resume()
  }

  #track (p: Promise<void>): Promise<void> {
    this.#running.add(p)
    void p.finally(() => this.#running.delete(p))
    return p
  }

  /**
   * This instance's previous run of the schedule still goes on: the tick is missed (overlap) only if this instance
   * takes it. With a shared catalog another instance may take it instead and decide for itself (its run finds the
   * previous backup still running and records the overlap once).
   */
  async #overlapped (name: string, tick: Date): Promise<void> {
    if (!await this.#claimTick(name, tick)) return
    await this.#recordMissed(name, tick, 'overlap', 1)
  }

  async #recordMissed (name: string, scheduledAt: Date, reason: MissedRun['reason'], count: number): Promise<void> {
    if (!this.#entries.has(name)) return
    const state = this.#store.state(name) ?? { lastTickAt: scheduledAt.toISOString(), missed: [] }
    const missed: MissedRun = { scheduledAt: scheduledAt.toISOString(), reason, detectedAt: new Date().toISOString(), count }
    const tick = Math.max(Date.parse(state.lastTickAt), scheduledAt.getTime())
    await this.#store.putState(name, { ...state, lastTickAt: new Date(tick).toISOString(), missed: [missed, ...state.missed] })
    this.emit('missed', { schedule: name, missed })
  }

  async #run (name: string, scheduledAt: Date): Promise<void> {
    const entry = this.#entries.get(name)
    if (!entry || this.#closed) return
    // instances sharing a catalog all arm the same timers: the one that takes the tick runs it, the others stay quiet
    if (!await this.#claimTick(name, scheduledAt)) return
    let state: ScheduleState = this.#store.state(name) ?? { lastTickAt: scheduledAt.toISOString(), missed: [] }
    if (state.lastBackupId && !this.#isDone(state.lastBackupId)) {
      await this.#recordMissed(name, scheduledAt, 'overlap', 1)
      return
    }
    let backup: Backup
    const trail = this.#trail(`schedule:${name}`)
    try {
      backup = await this.#service.create(entry.def.backup, trail.actor.user, { scheduleId: name })
    } catch (err) {
      const error = toPgkeepError(err)
      await trail.record('backup.create', { outcome: 'failed', code: error.code })
      await this.#store.putState(name, { ...state, lastTickAt: scheduledAt.toISOString(), lastRunAt: new Date().toISOString() })
      this.emit('run-error', { schedule: name, error })
      return
    }
    await trail.record('backup.create', { outcome: 'ok' }, { backupId: backup.id })
    state = { ...state, lastTickAt: scheduledAt.toISOString(), lastRunAt: new Date().toISOString(), lastBackupId: backup.id }
    await this.#store.putState(name, state)
    this.emit('fired', { schedule: name, backup })
    // the create returned a set's first member (the globals): the run is over only when every member is
    const set = backup.set !== undefined ? await this.#service.waitForSet(backup.set.id) : undefined
    const final = set !== undefined ? set.members.find(m => m.id === backup.id) ?? this.#service.get(backup.id) : await this.#service.waitFor(backup.id)
    let retention: CleanupResult | undefined
    if ((set ?? final).status === 'completed' && entry.def.retention) {
      retention = await this.#applyRetention(name, entry.def.retention, final.target)
    }
    this.emit('finished', { schedule: name, backup: final, ...(set !== undefined ? { set } : {}), ...(retention ? { retention } : {}) })
  }

  async #applyRetention (name: string, policy: RetentionPolicy, target: string): Promise<CleanupResult | undefined> {
    try {
      return await auditCleanup(this.#trail(`schedule:${name}`), this.#service, { policy, target })
    } catch (err) {
      this.emit('run-error', { schedule: name, error: toPgkeepError(err) })
      return undefined
    }
  }

  /** The last run's backup, or for a set every member of it, ended. */
  #isDone (backupId: string): boolean {
    try {
      const backup = this.#service.get(backupId)
      const status = backup.set !== undefined ? this.#service.getSet(backup.set.id).status : backup.status
      return TERMINAL_STATUSES.includes(status)
    } catch {
      return true // deleted since: nothing is running
    }
  }
}

function floorSecond (d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000)
}

/** Counts fire times in (from, to]; bounded so a seconds-level cron after a long downtime stays cheap. */
function fireTimesBetween (cron: Cron, from: Date, to: Date): { count: number, latest?: Date } {
  let count = 0
  let latest: Date | undefined
  let cursor: Date | null = from
  while (count < 100_000) {
    cursor = cron.nextRun(cursor)
    if (!cursor || cursor.getTime() > to.getTime()) break
    count++
    latest = cursor
  }
  return { count, latest }
}

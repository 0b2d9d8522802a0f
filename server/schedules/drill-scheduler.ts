import { EventEmitter } from 'node:events'
import { Cron } from 'croner'
import type { Backup, BackupWithProgress } from '../../schemas/backup.ts'
import type { Drill, DrillRequest, DrillSchedule } from '../../schemas/drill.ts'
import { toPgkeepError } from '../errors.ts'

/** What scheduled drills need of the backup service. */
export interface DrillScheduleSource {
  active: () => BackupWithProgress[]
  on: (event: 'status', fn: (b: Backup) => void) => unknown
  off: (event: 'status', fn: (b: Backup) => void) => unknown
  drills: {
    start: (req: DrillRequest, createdBy: string, opts: { scheduled?: boolean }) => Promise<Drill>
    waitFor: (id: string) => Promise<Drill>
  }
}

/** Who the history and the audit log name for a scheduled drill. */
export const drillScheduleActor = (target: string): string => `schedule:drill:${target}`

/**
 * `drills: [{target, cron}]`: each fires a drill of the target's newest completed backup. A drill never runs
 * beside one of the target's own backups (both read the same server, and the drill wants the newest backup):
 * when one is queued or running at fire time, the drill waits until none is. One run per schedule at a time
 * (croner's protect); a fire that finds the previous drill still running is skipped.
 * Events: 'fired' {target, drill}, 'finished' {target, drill}, 'run-error' {target, error}.
 */
export class DrillScheduler extends EventEmitter {
  readonly #crons: Cron[] = []
  #closed = false

  constructor (private readonly source: DrillScheduleSource, private readonly schedules: DrillSchedule[]) {
    super()
  }

  start (): void {
    for (const s of this.schedules) {
      this.#crons.push(new Cron(s.cron, { protect: true, ...(s.timezone ? { timezone: s.timezone } : {}) }, async () => { await this.run(s.target) }))
    }
  }

  /** One scheduled run, now: waits for the target's backups, drills, and resolves once the drill ended. */
  async run (target: string): Promise<void> {
    try {
      await this.#targetIdle(target)
      if (this.#closed) return
      const drill = await this.source.drills.start({ target }, drillScheduleActor(target), { scheduled: true })
      this.emit('fired', { target, drill })
      this.emit('finished', { target, drill: await this.source.drills.waitFor(drill.id) })
    } catch (err) {
      this.emit('run-error', { target, error: toPgkeepError(err) })
    }
  }

  /** Resolves once no backup of `target` is queued, running or verifying in this process (or at close). */
  async #targetIdle (target: string): Promise<void> {
    const busy = (): boolean => this.source.active().some(a => a.backup.target === target)
    if (!busy()) return
    this.emit('waiting', { target })
    await new Promise<void>(resolve => {
      const check = (): void => {
        if (busy() && !this.#closed) return
        this.source.off('status', check)
        clearInterval(closedWatch)
        resolve()
      }
      // status events say when a backup ended; the watch only notices close()
      const closedWatch = setInterval(() => { if (this.#closed) check() }, 500)
      closedWatch.unref()
      this.source.on('status', check)
    })
  }

  /**
   * Stops the timers and any run still waiting for a backup; a drill already started is the service's to finish
   * or cancel (its close does), so it is not waited for here.
   */
  close (): void {
    this.#closed = true
    for (const c of this.#crons) c.stop()
  }
}

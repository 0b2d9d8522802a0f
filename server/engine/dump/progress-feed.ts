import type { CopySample } from '../pg/copy-progress.ts'
import type { TargetFacts } from '../pg/inspector.ts'
import { ProgressEstimator, type ProgressSnapshot } from './progress-estimator.ts'

/** Bytes are reported in steps of this much: finer steps would only be work for every listener. */
const BYTE_STEP = 1024 * 1024
/** While nothing changes (a lock wait, a slow table without COPY samples) rate and ETA still age. */
const HEARTBEAT_MS = 1000
/**
 * The live hub's slot for a job's progress (5/s, http/live-hub.ts). A paced feed reports once per slot, so no
 * report waits in the hub for the next one and what a viewer gets is as old as the delivery only.
 */
export const PROGRESS_PACE_MS = 200

/**
 * What a dump job sees, passed to the estimator, and reported whenever a viewer would notice the
 * difference: another MiB, another tenth of a percent, another table. The live hub decides how often
 * viewers get it; this only avoids announcing nothing new.
 *
 * Paced (while the byte count is read from outside, `pace`), it reports on one clock instead: each report reads
 * the bytes fresh, and a table started or a COPY sample between two reports waits for the next. Unpaced, a
 * report between the byte ticks (a COPY sample) would carry a byte count up to a tick old, and several sources
 * reporting at their own rates would queue in the hub's throttle for a slot.
 */
export class ProgressFeed {
  private readonly estimator: ProgressEstimator
  private lastKey = ''
  private lastReportAt = 0
  private clock?: NodeJS.Timeout
  /** between pace and unpace: changes wait for the clock's next report */
  private paced = false

  constructor (facts: TargetFacts, private readonly report: (p: ProgressSnapshot) => void) {
    this.estimator = new ProgressEstimator(facts)
    this.beat()
  }

  /** Reads the raw byte count with `readBytes` once per slot and reports then, until `unpace`. */
  pace (readBytes: () => number | undefined): void {
    this.paced = true
    this.startClock(PROGRESS_PACE_MS, () => {
      const n = readBytes()
      if (n !== undefined) this.estimator.onBytes(n)
      this.send(Date.now() - this.lastReportAt >= HEARTBEAT_MS)
    })
  }

  /** Back to reporting each change as it comes, with a heartbeat (the byte count now comes by onBytes). */
  unpace (): void {
    if (!this.paced) return
    this.paced = false
    this.beat()
  }

  onBytes (rawBytesTotal: number): void {
    this.estimator.onBytes(rawBytesTotal)
    this.sendUnpaced()
  }

  onTableStarted (schema: string, table: string): void {
    this.estimator.onTableStarted(schema, table)
    this.sendUnpaced()
  }

  onCopySample (sample: CopySample): void {
    this.estimator.onCopySample(sample)
    this.sendUnpaced()
  }

  /** The dump is complete: one last report with percent 100 and the final byte count. */
  complete (): void {
    this.stop()
    this.estimator.complete()
    this.send(true)
  }

  stop (): void {
    clearInterval(this.clock)
    this.clock = undefined
    this.paced = false
  }

  /** Unpaced: a report once a second even when nothing changed. */
  private beat (): void {
    this.startClock(HEARTBEAT_MS, () => this.send(true))
  }

  private startClock (everyMs: number, tick: () => void): void {
    clearInterval(this.clock)
    this.clock = setInterval(tick, everyMs)
    this.clock.unref()
  }

  private sendUnpaced (): void {
    if (!this.paced) this.send(false)
  }

  private send (always: boolean): void {
    const snap = this.estimator.snapshot()
    const key = `${Math.floor(snap.bytes / BYTE_STEP)}|${snap.percent}|${snap.currentTable}|${snap.tablesDone}`
    if (!always && key === this.lastKey) return
    this.lastKey = key
    this.lastReportAt = Date.now()
    this.report(snap)
  }
}

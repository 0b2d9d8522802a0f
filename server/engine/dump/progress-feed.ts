import type { CopySample } from '../pg/copy-progress.ts'
import type { TargetFacts } from '../pg/inspector.ts'
import { ProgressEstimator, type ProgressSnapshot } from './progress-estimator.ts'

/** Bytes are reported in steps of this much: finer steps would only be work for every listener. */
const BYTE_STEP = 1024 * 1024
/** While nothing changes (a lock wait, a slow table without COPY samples) rate and ETA still age. */
const HEARTBEAT_MS = 1000

/**
 * What a dump job sees, passed to the estimator, and reported whenever a viewer would notice the
 * difference: another MiB, another tenth of a percent, another table. The live hub decides how often
 * viewers get it; this only avoids announcing nothing new.
 */
export class ProgressFeed {
  private readonly estimator: ProgressEstimator
  private lastKey = ''
  private readonly heartbeat: NodeJS.Timeout

  constructor (facts: TargetFacts, private readonly report: (p: ProgressSnapshot) => void) {
    this.estimator = new ProgressEstimator(facts)
    this.heartbeat = setInterval(() => this.send(true), HEARTBEAT_MS)
    this.heartbeat.unref()
  }

  onBytes (rawBytesTotal: number): void {
    this.estimator.onBytes(rawBytesTotal)
    this.send(false)
  }

  onTableStarted (schema: string, table: string): void {
    this.estimator.onTableStarted(schema, table)
    this.send(false)
  }

  onCopySample (sample: CopySample): void {
    this.estimator.onCopySample(sample)
    this.send(false)
  }

  /** The dump is complete: one last report with percent 100 and the final byte count. */
  complete (): void {
    this.stop()
    this.estimator.complete()
    this.send(true)
  }

  stop (): void {
    clearInterval(this.heartbeat)
  }

  private send (always: boolean): void {
    const snap = this.estimator.snapshot()
    const key = `${Math.floor(snap.bytes / BYTE_STEP)}|${snap.percent}|${snap.currentTable}|${snap.tablesDone}`
    if (!always && key === this.lastKey) return
    this.lastKey = key
    this.report(snap)
  }
}

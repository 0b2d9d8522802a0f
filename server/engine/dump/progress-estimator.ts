import type { CopySample } from '../pg/copy-progress.ts'
import type { TableEstimate, TargetFacts } from '../pg/inspector.ts'
import { SlidingRate } from '../sliding-rate.ts'

export interface ProgressSnapshot {
  /** raw bytes pg_dump has written so far */
  bytes: number
  /** raw bytes per second over the last few seconds */
  rate: number
  /** weighted by table size; undefined when the tables to dump have no known size */
  percent?: number
  etaSeconds?: number
  /** 'schema.table' from pg_dump's last "dumping contents of table" line */
  currentTable?: string
  tablesDone: number
  tablesTotal: number
}

const CEILING_BEFORE_COMPLETE = 99.9
const ETA_MIN_ELAPSED_MS = 1000
const ETA_MIN_PERCENT = 1

/**
 * Turns what we can observe of a running pg_dump into an honest estimate. Percent is weighted by
 * on-disk table size: tables pg_dump has finished count whole, the current one by its COPY
 * progress (tuples against reltuples, else bytes against its size). It never goes backwards,
 * never passes 99.9 before complete(), and is undefined when no table has a known size
 * (schema-only dumps, empty databases): bytes and rate are then all we claim to know.
 * Tables pg_dump dumps that inspection did not list (created meanwhile) count in tablesDone/
 * tablesTotal but weigh nothing, so they can never push percent past 100.
 */
export class ProgressEstimator {
  private readonly now: () => number
  private readonly startedAt: number
  private readonly totalBytes: number
  private readonly byName = new Map<string, TableEstimate>()
  private readonly byRelid = new Map<number, TableEstimate>()
  private readonly done = new Set<TableEstimate>()
  /** fraction copied of tables started but not yet done, from COPY progress */
  private readonly inside = new Map<TableEstimate, number>()
  private current?: { name: string, table?: TableEstimate }
  private unlistedSeen = 0
  private unlistedDone = 0
  private doneBytes = 0
  private rawBytes = 0
  /** weighted bytes reported so far: only ever grows */
  private progressBytes = 0
  private completed = false
  private readonly byteRate: SlidingRate
  private readonly progressRate: SlidingRate

  constructor (facts: TargetFacts, opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now
    this.startedAt = this.now()
    this.byteRate = new SlidingRate(this.startedAt)
    this.progressRate = new SlidingRate(this.startedAt)
    for (const t of facts.tables) {
      this.byName.set(`${t.schema}.${t.name}`, t)
      this.byRelid.set(t.relid, t)
    }
    this.totalBytes = facts.tables.reduce((sum, t) => sum + Math.max(0, t.bytes), 0)
  }

  onTableStarted (schema: string, table: string): void {
    if (this.completed) return
    this.finishCurrent()
    const name = `${schema}.${table}`
    const listed = this.byName.get(name)
    if (listed === undefined) this.unlistedSeen++
    this.current = { name, table: listed }
    this.update()
  }

  onCopySample (s: CopySample): void {
    if (this.completed) return
    const table = this.byRelid.get(s.relid)
    // a sample may arrive before its stderr line, or for a table we never listed: only weigh the former
    if (table === undefined || this.done.has(table)) return
    let fraction = 0
    if (table.reltuples > 0) fraction = s.tuplesProcessed / table.reltuples
    else if (table.bytes > 0) fraction = s.bytesProcessed / table.bytes
    // reltuples is an estimate and may be stale: a table is never more than fully copied
    fraction = Math.min(1, Math.max(0, fraction))
    this.inside.set(table, Math.max(this.inside.get(table) ?? 0, fraction))
    this.update()
  }

  onBytes (rawBytesTotal: number): void {
    if (this.completed) return
    this.rawBytes = rawBytesTotal
    this.byteRate.record(this.now(), rawBytesTotal)
  }

  complete (): void {
    this.finishCurrent()
    this.current = undefined
    this.completed = true
  }

  snapshot (): ProgressSnapshot {
    const now = this.now()
    const tablesTotal = this.byName.size + this.unlistedSeen
    const base = { bytes: this.rawBytes, rate: Math.round(this.byteRate.perSecond(now)), tablesTotal }
    if (this.completed) return { ...base, percent: 100, etaSeconds: 0, tablesDone: tablesTotal }
    const snap: ProgressSnapshot = { ...base, tablesDone: this.done.size + this.unlistedDone }
    if (this.current !== undefined) snap.currentTable = this.current.name
    if (this.totalBytes > 0) {
      // floored to 0.1 (with a hair of slack for binary fractions): rounding up could show 100 early
      const percent = Math.min(CEILING_BEFORE_COMPLETE, Math.floor(this.progressBytes / this.totalBytes * 1000 + 1e-9) / 10)
      snap.percent = percent
      const eta = this.eta(now, percent)
      if (eta !== undefined) snap.etaSeconds = eta
    }
    return snap
  }

  private eta (now: number, percent: number): number | undefined {
    const elapsed = now - this.startedAt
    if (elapsed < ETA_MIN_ELAPSED_MS || percent < ETA_MIN_PERCENT) return undefined
    let rate = this.progressRate.perSecond(now)
    // inside one big table without COPY samples progress moves in steps: fall back to the average
    if (rate <= 0) rate = this.progressBytes / (elapsed / 1000)
    if (rate <= 0) return undefined
    return Math.ceil((this.totalBytes - this.progressBytes) / rate)
  }

  private finishCurrent (): void {
    const cur = this.current
    if (cur === undefined) return
    if (cur.table === undefined) this.unlistedDone++
    else if (!this.done.has(cur.table)) {
      this.done.add(cur.table)
      this.doneBytes += Math.max(0, cur.table.bytes)
      this.inside.delete(cur.table)
    }
    this.current = undefined
  }

  private update (): void {
    let weighted = this.doneBytes
    for (const [table, fraction] of this.inside) weighted += Math.max(0, table.bytes) * fraction
    const ceiling = this.totalBytes * CEILING_BEFORE_COMPLETE / 100
    const next = Math.min(ceiling, weighted)
    if (next > this.progressBytes) {
      this.progressBytes = next
      this.progressRate.record(this.now(), next)
    }
  }
}

import type { Progress } from '../../schemas/backup.ts'
import { formatBytes, formatDuration } from './output.ts'

const CLEAR_LINE = '\r\x1b[2K'

/** One line describing a running dump; pure so it can be tested without a terminal. */
export function renderProgress (p: Progress, width = 80): string {
  // a pseudo-terminal without a size (script(1), some CI runners) reports 0 columns
  const columns = width > 0 ? width : 80
  const parts: string[] = []
  if (p.percent !== undefined) {
    const pct = Math.min(100, Math.max(0, p.percent))
    const barWidth = columns >= 100 ? 30 : columns >= 70 ? 20 : 10
    const filled = Math.round(barWidth * pct / 100)
    parts.push(`[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]`, `${pct.toFixed(0).padStart(3)}%`)
  }
  parts.push(formatBytes(p.bytes), `${formatBytes(p.rate)}/s`)
  if (p.etaSeconds !== undefined) parts.push(`ETA ${formatDuration(p.etaSeconds)}`)
  if (p.tablesTotal > 0) parts.push(`${p.tablesDone}/${p.tablesTotal} tables`)
  if (p.currentTable) parts.push(p.currentTable)
  const line = parts.join('  ')
  // a wrapped line breaks the \r redraw, so never exceed the terminal width
  return line.length < columns ? line : line.slice(0, Math.max(0, columns - 2)) + '…'
}

export interface ProgressReporterOptions {
  tty: boolean
  columns?: number
  /** how often a non-TTY stream gets a plain progress line */
  plainIntervalMs?: number
  /** how often a TTY redraws at most (the engine reports every change) */
  frameIntervalMs?: number
  now?: () => number
}

/**
 * On a TTY redraws one line in place, at most every frameIntervalMs; otherwise (CI logs, pipes)
 * prints a plain line every few seconds so the log shows life without thousands of lines.
 */
export class ProgressReporter {
  private readonly out: NodeJS.WritableStream
  private readonly opts: Required<ProgressReporterOptions>
  private barShown = false
  private lastPlainAt = -Infinity
  private lastFrameAt = -Infinity
  private last?: Progress
  /** the sample the last plain line showed */
  private lastPlain?: Progress
  /** the newest progress is not on screen yet */
  private stale = false

  constructor (out: NodeJS.WritableStream, opts: ProgressReporterOptions) {
    this.out = out
    this.opts = { columns: 80, plainIntervalMs: 5000, frameIntervalMs: 100, now: Date.now, ...opts }
  }

  update (p: Progress): void {
    this.last = p
    if (this.opts.tty) {
      this.stale = true
      if (this.opts.now() - this.lastFrameAt >= this.opts.frameIntervalMs) this.draw()
      return
    }
    const now = this.opts.now()
    if (now - this.lastPlainAt < this.opts.plainIntervalMs) return
    this.lastPlainAt = now
    this.lastPlain = p
    this.out.write(renderProgress(p, 200) + '\n')
  }

  private draw (): void {
    if (!this.last) return
    this.out.write(CLEAR_LINE + renderProgress(this.last, this.opts.columns))
    this.barShown = true
    this.stale = false
    this.lastFrameAt = this.opts.now()
  }

  /** A line that must not be overwritten by the bar (status change, log line). */
  message (line: string): void {
    // whatever the bar last knew is shown before the message, as if no frame had been skipped
    if (this.stale) this.draw()
    if (this.barShown) this.out.write(CLEAR_LINE)
    this.out.write(line + '\n')
    if (this.barShown && this.last) this.out.write(renderProgress(this.last, this.opts.columns))
  }

  /**
   * The job ended. On a terminal the bar is cleared (the caller prints the outcome); in a log, the last line is the
   * final figures, not whatever sample the interval last let through: 100% and every table when it completed,
   * where it stopped otherwise.
   */
  done (completed = false): void {
    if (this.barShown) this.out.write(CLEAR_LINE)
    if (!this.opts.tty && this.last) {
      const p = this.last
      const final = completed
        ? { ...p, percent: p.percent === undefined ? undefined : 100, etaSeconds: undefined, currentTable: undefined, tablesDone: p.tablesTotal }
        : p
      if (completed || p !== this.lastPlain) this.out.write(renderProgress(final, 200) + '\n')
    }
    this.barShown = false
    this.last = undefined
  }
}

import { execFile } from 'node:child_process'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { RestoreProgress } from '../../../schemas/restore.ts'
import { SlidingRate } from '../sliding-rate.ts'
import type { RestoreLine } from './command.ts'

const run = promisify(execFile)


/**
 * Progress of one restore, reported on every change (the live hub throttles what viewers see). Bytes
 * only grow, so percent never goes backwards; it reaches 100 only through finish().
 */
export class RestoreProgressMeter {
  private bytes = 0
  private item: string | undefined
  private readonly rate: SlidingRate

  constructor (private readonly totalBytes: number, private readonly emit: (p: RestoreProgress) => void, private readonly now: () => number = Date.now) {
    this.rate = new SlidingRate(now())
  }

  add (n: number): void { this.update(this.bytes + n) }

  /** bytes done so far (ignored when lower than before) and, optionally, what the tool is working on */
  update (bytes: number | undefined, item?: string): void {
    const moved = bytes !== undefined && bytes > this.bytes
    if (!moved && (item === undefined || item === this.item)) return
    if (item !== undefined) this.item = item
    if (moved) {
      this.bytes = Math.min(bytes, this.totalBytes)
      this.rate.record(this.now(), this.bytes)
    }
    this.send()
  }

  finish (): void {
    this.bytes = this.totalBytes
    this.send(100)
  }

  private send (percent?: number): void {
    const pct = percent ?? (this.totalBytes > 0 ? Math.min(99.9, this.bytes * 100 / this.totalBytes) : 0)
    this.emit({
      bytes: this.bytes,
      totalBytes: this.totalBytes,
      percent: Math.round(pct * 10) / 10,
      rate: Math.round(this.rate.perSecond(this.now())),
      ...(this.item === undefined ? {} : { currentItem: this.item }),
    })
  }
}

/**
 * When pg_restore reads the backup itself (directory format, or -j on a custom file) there is no
 * byte stream to count: progress comes from its --verbose lines instead, each finished TABLE DATA
 * item adding the size of its data file (directory) or an equal share (custom).
 */
export class ItemProgress {
  private started = 0
  private readonly finished = new Set<number>()

  private constructor (
    private readonly order: number[],
    private readonly sizes: Map<number, number>,
    private readonly baseBytes: number,
    private readonly totalBytes: number,
    private readonly parallel: boolean,
  ) {}

  static async load (pgRestorePath: string, path: string, format: 'directory' | 'custom', totalBytes: number, parallel: boolean, env: NodeJS.ProcessEnv): Promise<ItemProgress> {
    const { stdout } = await run(pgRestorePath, ['-l', '-F', format === 'directory' ? 'd' : 'c', path], { env, maxBuffer: 64 * 1024 * 1024 })
    const order = [...stdout.matchAll(/^(\d+); \d+ \d+ TABLE DATA /gm)].map(m => Number(m[1]))
    const sizes = new Map<number, number>()
    let base = 0
    if (format === 'directory') {
      let dataBytes = 0
      for (const name of await readdir(path)) {
        const m = /^(\d+)\.dat/.exec(name)
        const size = (await stat(join(path, name))).size
        if (m && order.includes(Number(m[1]))) { sizes.set(Number(m[1]), size); dataBytes += size }
      }
      base = Math.max(0, totalBytes - dataBytes)
    } else {
      for (const id of order) sizes.set(id, order.length > 0 ? totalBytes / order.length : 0)
    }
    return new ItemProgress(order, sizes, base, totalBytes, parallel)
  }

  /** Bytes considered done after this verbose line, or undefined when the line says nothing new. */
  onLine (line: RestoreLine): number | undefined {
    if (line.kind === 'data' && !this.parallel) {
      // serial restore: data items come in TOC order, so starting the next one finishes the previous
      const id = this.order[this.started - 1]
      if (id !== undefined) this.finished.add(id)
      this.started++
    } else if (line.kind === 'finished' && this.parallel && this.sizes.has(line.dumpId)) {
      this.finished.add(line.dumpId)
    } else {
      return undefined
    }
    let done = this.baseBytes
    for (const id of this.finished) done += this.sizes.get(id) ?? 0
    return Math.min(done, this.totalBytes)
  }
}

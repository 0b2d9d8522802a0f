import type { CatalogDb } from './catalog-db.ts'

export const PROGRESS_CHANNEL = 'pgkeep_progress'

/** What a subscriber on another instance receives. */
export interface RelayedProgress {
  jobId: string
  /** the instance running the job */
  instanceId: string
  payload: unknown
}

// the live hub's pace (docs/architecture.md): viewers never get more than 5 a second per job anyway
const DEFAULT_PER_SECOND = 5
// PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; progress is a few hundred
const MAX_PAYLOAD_BYTES = 7900

interface Pending { payload: unknown, timer: NodeJS.Timeout }

/**
 * Carries a job's progress from the instance running it to every other instance (NOTIFY pgkeep_progress), so a
 * viewer connected anywhere follows a job running anywhere. Throttled per job, newest kept: a burst between two
 * sends collapses into its last value, sent when the interval is up, and flush() sends what is held before the
 * job's final status. A lost notification (the LISTEN connection was down) is only a missed frame: the next one
 * carries the whole state.
 */
export class ProgressRelay {
  readonly #db: CatalogDb
  readonly #instanceId: string
  readonly #intervalMs: number
  readonly #lastSent = new Map<string, number>()
  readonly #pending = new Map<string, Pending>()
  /** sends that failed (the catalog is down): progress is not worth failing a job for */
  onError: (err: unknown) => void = () => {}

  constructor (db: CatalogDb, instanceId: string, opts: { perSecond?: number } = {}) {
    this.#db = db
    this.#instanceId = instanceId
    this.#intervalMs = 1000 / (opts.perSecond ?? DEFAULT_PER_SECOND)
  }

  publish (jobId: string, payload: unknown): void {
    const held = this.#pending.get(jobId)
    if (held !== undefined) {
      held.payload = payload
      return
    }
    const wait = (this.#lastSent.get(jobId) ?? -Infinity) + this.#intervalMs - performance.now()
    if (wait <= 0) {
      this.#send(jobId, payload)
      return
    }
    const timer = setTimeout(() => { this.flush(jobId) }, wait)
    timer.unref()
    this.#pending.set(jobId, { payload, timer })
  }

  /** Sends the held value now, if any (before the job's final status, so viewers end on its last progress). */
  flush (jobId: string): void {
    const held = this.#pending.get(jobId)
    if (held === undefined) return
    clearTimeout(held.timer)
    this.#pending.delete(jobId)
    this.#send(jobId, held.payload)
  }

  /** The job ended: flush, and forget its pace. */
  end (jobId: string): void {
    this.flush(jobId)
    this.#lastSent.delete(jobId)
  }

  /** Progress of jobs running on other instances; this instance's own never comes back to it. */
  async subscribe (handler: (p: RelayedProgress) => void): Promise<() => void> {
    return await this.#db.listen(PROGRESS_CHANNEL, raw => {
      let msg: RelayedProgress
      try { msg = JSON.parse(raw) as RelayedProgress } catch { return }
      if (msg.instanceId !== this.#instanceId) handler(msg)
    })
  }

  close (): void {
    for (const id of [...this.#pending.keys()]) this.end(id)
  }

  #send (jobId: string, payload: unknown): void {
    this.#lastSent.set(jobId, performance.now())
    const text = JSON.stringify({ jobId, instanceId: this.#instanceId, payload } satisfies RelayedProgress)
    if (Buffer.byteLength(text) > MAX_PAYLOAD_BYTES) {
      this.onError(new Error(`progress of job ${jobId} is ${Buffer.byteLength(text)} bytes, over NOTIFY's limit; not relayed`))
      return
    }
    this.#db.notify(PROGRESS_CHANNEL, text).catch(err => { this.onError(err) })
  }
}

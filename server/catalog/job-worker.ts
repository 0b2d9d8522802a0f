import { EventEmitter } from 'node:events'
import { PgkeepError, toPgkeepError } from '../errors.ts'
import { backoffDelay } from '../engine/retry.ts'
import type { CatalogDb } from './catalog-db.ts'
import { InstanceRegistration, newInstanceId } from './instances.ts'
import { CANCEL_CHANNEL, CatalogJobQueue, JOBS_CHANNEL, type CatalogJob, type FinalJobState, type JobError } from './job-queue.ts'

/** What a runner may say about how its job ended; by default resolving is `done` and throwing is `failed`. */
export interface JobOutcome { state: FinalJobState, error?: JobError }

/** Runs one job; `signal` aborts on a cancel, a lost lease or a shutdown (its reason is a PgkeepError). */
export type JobRunner = (job: CatalogJob, signal: AbortSignal) => Promise<JobOutcome | undefined | void>

export interface JobTimings {
  /** how long a claim or a renewal holds a job (and an instance's heartbeat vouches for it) */
  leaseMs: number
  /** how often leases are renewed and expired ones swept; a few per lease, so one slow beat is not a death */
  heartbeatMs: number
  /** how often an idle worker looks at the queue without being woken (a NOTIFY lost while LISTEN was down) */
  pollMs: number
}

export const DEFAULT_TIMINGS: JobTimings = { leaseMs: 15_000, heartbeatMs: 5000, pollMs: 5000 }

export interface JobWorkerOptions {
  runner: JobRunner
  /** jobs run at once on this instance */
  concurrency: number
  /** false (`--no-worker`): never claims; still heartbeats, relays cancels and sweeps expired leases */
  worker?: boolean
  /** pgkeep's version, shown in the instances list */
  version: string
  instanceId?: string
  timings?: Partial<JobTimings>
  /**
   * The leftovers of a job whose instance died (unfinished multipart uploads, a scratch drill database). Called
   * once per interrupted job, on whichever instance marked it; a throw has it retried by a later sweep.
   */
  onInterrupted?: (job: CatalogJob) => Promise<void>
  /** Only these jobs are claimed (read at each claim): a CLI process runs what it queued itself. Absent: any job. */
  claimOnly?: () => readonly string[]
  /** A cancel reached this instance for a job it runs (its signal is aborted as well): for callers that log or audit it. */
  onCancel?: (jobId: string) => void
}

const CANCELLED = (): PgkeepError => new PgkeepError('CANCELLED', 'the job was cancelled')
const LEASE_LOST = (): PgkeepError => new PgkeepError('INTERRUPTED', 'this instance lost the job\'s lease; another instance marked it interrupted')
const SHUTDOWN = (): PgkeepError => new PgkeepError('INTERRUPTED', 'pgkeep shut down while the job was running')
// ended jobs are kept this long, then pruned by some instance's heartbeat (one in PRUNE_EVERY)
const KEEP_ENDED_DAYS = 7
const PRUNE_EVERY = 60
// finishing a job waits out a catalog outage: soon, then no more than every 5 s
const FINISH_RETRY = { attempts: Infinity, baseDelayMs: 200, maxDelayMs: 5000 }

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/**
 * One instance's share of the shared queue: its presence (heartbeat), its worker slots (claims up to
 * `concurrency` jobs, woken by NOTIFY pgkeep_jobs, polling as a fallback), the leases of what it runs (renewed
 * every heartbeat), cancels aimed at its jobs (NOTIFY pgkeep_cancel, and the cancel flag seen at each renewal),
 * and its part in sweeping the leases of instances that died.
 * Events: 'claimed' (job), 'finished' ({job, outcome, recorded}), 'interrupted' (job, after its clean-up),
 * 'heartbeat' (after every beat), 'error' ({where, error}) for catalog failures it rides out.
 */
export class JobWorker extends EventEmitter {
  readonly instanceId: string
  readonly queue: CatalogJobQueue
  readonly timings: JobTimings
  readonly #opts: JobWorkerOptions
  readonly #registration: InstanceRegistration
  readonly #running = new Map<string, AbortController>()
  readonly #ending = new Set<Promise<void>>()
  /** cancels for jobs this instance may be claiming right now: the NOTIFY can beat the claim's reply */
  readonly #earlyCancels = new Set<string>()
  #claiming = false
  #claim: Promise<void> = Promise.resolve()
  #abortOnClose = false
  #pumpAgain = false
  #beating: Promise<void> | undefined
  #beats = 0
  #closing = false
  #heartbeatTimer: NodeJS.Timeout | undefined
  #pollTimer: NodeJS.Timeout | undefined
  #unlisten: Array<() => void> = []

  private constructor (db: CatalogDb, opts: JobWorkerOptions) {
    super()
    this.#opts = opts
    this.instanceId = opts.instanceId ?? newInstanceId()
    this.queue = new CatalogJobQueue(db)
    this.timings = { ...DEFAULT_TIMINGS, ...opts.timings }
    this.#registration = new InstanceRegistration(db, this.instanceId, { version: opts.version, worker: this.isWorker, concurrency: opts.concurrency })
    // 'error' without a listener would throw: these are reported, never fatal
    this.on('error', () => {})
  }

  /** Registers the instance, listens, and starts claiming (unless `worker: false`). */
  static async start (db: CatalogDb, opts: JobWorkerOptions): Promise<JobWorker> {
    const w = new JobWorker(db, opts)
    await w.#registration.heartbeat(w.timings.leaseMs)
    w.#unlisten.push(await db.listen(CANCEL_CHANNEL, id => { w.#cancelLocal(id) }))
    if (w.isWorker) w.#unlisten.push(await db.listen(JOBS_CHANNEL, () => { w.#pump() }))
    w.#heartbeatTimer = setInterval(() => { w.#beat() }, w.timings.heartbeatMs)
    if (w.isWorker) w.#pollTimer = setInterval(() => { w.#pump() }, w.timings.pollMs)
    w.#pump()
    return w
  }

  get isWorker (): boolean { return this.#opts.worker !== false && this.#opts.concurrency > 0 }
  /** ids of the jobs running here */
  get running (): string[] { return [...this.#running.keys()] }

  /**
   * Stops claiming, then waits for the running jobs to end (abortRunning: aborts them first; they end
   * `interrupted`) while still renewing their leases, and leaves the instances list.
   */
  async close (opts: { abortRunning?: boolean } = {}): Promise<void> {
    this.#closing = true
    this.#abortOnClose = opts.abortRunning === true
    clearInterval(this.#pollTimer)
    await this.#claim
    if (this.#abortOnClose) for (const c of this.#running.values()) c.abort(SHUTDOWN())
    while (this.#ending.size > 0) await Promise.allSettled([...this.#ending])
    clearInterval(this.#heartbeatTimer)
    // a beat still in flight would write the instance's row back after leave()
    await this.#beating
    for (const off of this.#unlisten) off()
    await this.#registration.leave().catch(err => { this.emit('error', { where: 'leave', error: err }) })
  }

  /** Claims as many jobs as there are free slots; one claim at a time, re-run if woken meanwhile. */
  #pump (): void {
    if (!this.isWorker || this.#closing) return
    if (this.#claiming) {
      this.#pumpAgain = true
      return
    }
    const free = this.#opts.concurrency - this.#running.size
    if (free <= 0) return
    this.#claiming = true
    this.#pumpAgain = false
    this.#claim = this.queue.claim(this.instanceId, free, this.timings.leaseMs, this.#opts.claimOnly?.()).then(jobs => {
      for (const job of jobs) this.#run(job)
      // a full batch means more may be waiting
      if (jobs.length === free) this.#pumpAgain = true
    }, err => {
      this.emit('error', { where: 'claim', error: err })
    }).finally(() => {
      this.#claiming = false
      this.#earlyCancels.clear()
      if (this.#pumpAgain) this.#pump()
    })
  }

  #run (job: CatalogJob): void {
    const controller = new AbortController()
    this.#running.set(job.id, controller)
    this.emit('claimed', job)
    if (this.#earlyCancels.has(job.id) || job.cancelRequested) this.#cancelLocal(job.id)
    const ending = this.#execute(job, controller.signal).finally(() => {
      this.#running.delete(job.id)
      this.#ending.delete(ending)
      this.#pump()
    })
    this.#ending.add(ending)
  }

  async #execute (job: CatalogJob, signal: AbortSignal): Promise<void> {
    let outcome: JobOutcome
    try {
      outcome = (await this.#opts.runner(job, signal)) ?? (signal.aborted ? abortedOutcome(signal) : { state: 'done' })
    } catch (err) {
      outcome = signal.aborted ? abortedOutcome(signal) : { state: 'failed', error: errorOf(err) }
    }
    // the catalog may be down right now: the job keeps its slot (and its lease renewals) until the end is recorded
    let recorded = false
    for (let attempt = 0; ; attempt++) {
      try {
        recorded = await this.queue.finish(job.id, this.instanceId, outcome.state, outcome.error)
        break
      } catch (err) {
        this.emit('error', { where: 'finish', error: err })
        await sleep(backoffDelay(attempt, FINISH_RETRY))
      }
    }
    this.emit('finished', { job, outcome, recorded })
  }

  #cancelLocal (id: string): void {
    const controller = this.#running.get(id)
    if (controller === undefined) {
      if (this.#claiming) this.#earlyCancels.add(id)
      return
    }
    if (controller.signal.aborted) return
    controller.abort(CANCELLED())
    this.#opts.onCancel?.(id)
  }

  /** Instance heartbeat, lease renewal (with lost leases and missed cancels), then the sweep of expired leases. */
  #beat (): void {
    if (this.#beating !== undefined) return
    this.#beating = this.#beatOnce().finally(() => {
      this.#beating = undefined
      this.emit('heartbeat')
    })
  }

  async #beatOnce (): Promise<void> {
    try {
      const { leaseMs } = this.timings
      await this.#registration.heartbeat(leaseMs)
      // a snapshot before the renewal: a job claimed after it was not in the renewal's reply by right
      const held = [...this.#running.keys()]
      const renewed = new Map((await this.queue.renewLeases(this.instanceId, leaseMs)).map(r => [r.id, r.cancelRequested]))
      for (const id of held) {
        const controller = this.#running.get(id)
        if (controller === undefined || controller.signal.aborted) continue
        if (!renewed.has(id)) controller.abort(LEASE_LOST())
        else if (renewed.get(id) === true) this.#cancelLocal(id)
      }
      for (const job of await this.queue.expireLeases(this.instanceId, leaseMs)) await this.#cleanUp(job)
      if (++this.#beats % PRUNE_EVERY === 0) await this.queue.pruneEnded(KEEP_ENDED_DAYS)
    } catch (err) {
      this.emit('error', { where: 'heartbeat', error: err })
    }
  }

  async #cleanUp (job: CatalogJob): Promise<void> {
    try {
      await this.#opts.onInterrupted?.(job)
    } catch (err) {
      this.emit('error', { where: 'clean-up', error: err, jobId: job.id })
      await this.queue.releaseCleanup(job.id, this.instanceId)
      return
    }
    await this.queue.markCleaned(job.id, this.instanceId)
    this.emit('interrupted', job)
  }
}

function abortedOutcome (signal: AbortSignal): JobOutcome {
  const reason = toPgkeepError(signal.reason)
  if (reason.code === 'CANCELLED') return { state: 'cancelled', error: { code: 'CANCELLED', message: reason.message } }
  return { state: 'interrupted', error: { code: reason.code, message: reason.message } }
}

function errorOf (err: unknown): JobError {
  const e = toPgkeepError(err)
  return { code: e.code, message: e.message }
}

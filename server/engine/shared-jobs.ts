import type { Progress } from '../../schemas/backup.ts'
import type { InstanceStatus } from '../../schemas/health.ts'
import type { CatalogDb } from '../catalog/catalog-db.ts'
import { CatalogJobQueue, type CatalogJob, type JobError } from '../catalog/job-queue.ts'
import { JobWorker, type JobOutcome } from '../catalog/job-worker.ts'
import { liveInstances } from '../catalog/instances.ts'
import { ProgressRelay } from '../catalog/progress-relay.ts'
import { PGKEEP_VERSION } from '../version.ts'

/** The kind of a backup's row in pgkeep.jobs (restores and drills run where they were asked for: docs/catalog.md). */
export const BACKUP_JOB = 'backup'

/**
 * Which queued jobs this process runs: `all` (a server), `own` (a CLI process: the ones it queued itself, so
 * `pgkeep create` finishes without a server and never takes a server's work), `none` (`serve --no-worker`).
 */
export type WorkerMode = 'all' | 'own' | 'none'

export interface SharedJobsHooks {
  /** runs a claimed backup here; resolves with how it ended */
  run: (id: string, signal: AbortSignal) => Promise<JobOutcome>
  /** the leftovers of a backup whose instance died (called once, on the instance that noticed) */
  interrupted: (job: CatalogJob) => Promise<void>
  /** progress of a backup running on another instance */
  remoteProgress: (progress: Progress) => void
  onError: (where: string, err: unknown) => void
}

export interface SharedJobsOptions {
  mode: WorkerMode
  concurrency: number
  leaseMs: number
  hooks: SharedJobsHooks
}

/**
 * The backups' side of the shared queue (catalog/job-*.ts): queueing in pgkeep.jobs, this instance's worker,
 * cancels that reach whichever instance runs the job, and progress relayed between instances. BackupService owns
 * the records; this owns who runs what.
 */
export class SharedJobs {
  readonly queue: CatalogJobQueue
  readonly #db: CatalogDb
  readonly #opts: SharedJobsOptions
  readonly #own = new Set<string>()
  #worker: JobWorker | undefined
  #starting: Promise<JobWorker> | undefined
  #relay: ProgressRelay | undefined
  #unsubscribe: (() => void) | undefined
  /** the instance id: known before the worker starts, so a `running` record can name it */
  readonly instanceId: string

  private constructor (db: CatalogDb, opts: SharedJobsOptions, instanceId: string) {
    this.#db = db
    this.#opts = opts
    this.queue = new CatalogJobQueue(db)
    this.instanceId = instanceId
  }

  static async start (db: CatalogDb, opts: SharedJobsOptions, instanceId: string): Promise<SharedJobs> {
    const jobs = new SharedJobs(db, opts, instanceId)
    jobs.#relay = new ProgressRelay(db, instanceId)
    jobs.#relay.onError = err => { opts.hooks.onError('progress relay', err) }
    // a CLI process follows only its own jobs; it needs no one else's progress
    if (opts.mode !== 'own') {
      jobs.#unsubscribe = await jobs.#relay.subscribe(p => { opts.hooks.remoteProgress(p.payload as Progress) })
      await jobs.#startWorker()
    }
    return jobs
  }

  /** Queues the backups in one transaction, in order (a set's members run in the order they were listed). */
  async enqueue (ids: string[]): Promise<void> {
    if (this.#opts.mode === 'own') for (const id of ids) this.#own.add(id)
    await this.#db.transaction(async client => {
      for (const id of ids) await this.queue.enqueue({ id, kind: BACKUP_JOB }, client)
    })
    if (this.#opts.mode === 'own') await this.#startWorker()
  }

  /** A queued job is cancelled on the spot; a running one is stopped by whichever instance runs it. */
  async cancel (id: string): Promise<'dequeued' | 'requested' | 'not-active'> {
    return await this.queue.requestCancel(id)
  }

  /** Those of `ids` no instance owes any more work (their job row is gone or ended). */
  async withoutLiveJob (ids: string[]): Promise<string[]> {
    const active = await this.queue.activeAmong(ids)
    return ids.filter(id => !active.has(id))
  }

  /** The backups this (CLI) process queued and no worker has taken yet: cancelled when it exits. */
  get ownQueued (): string[] {
    return [...this.#own]
  }

  publishProgress (progress: Progress): void {
    this.#relay?.publish(progress.backupId, progress)
  }

  /** Before a job's final status: viewers elsewhere get its last progress first. */
  endProgress (id: string): void {
    this.#relay?.end(id)
  }

  async status (): Promise<InstanceStatus> {
    const [queue, live] = await Promise.all([this.queue.depth(), liveInstances(this.#db)])
    return {
      id: this.instanceId,
      worker: this.#opts.mode === 'all' && this.#opts.concurrency > 0,
      concurrency: this.#opts.mode === 'none' ? 0 : this.#opts.concurrency,
      leases: this.#worker?.running.length ?? 0,
      queue,
      liveInstances: live.length,
    }
  }

  /** Stops claiming; waits for what runs here (the caller aborts it first when it should stop) and leaves. */
  async close (): Promise<void> {
    this.#unsubscribe?.()
    const worker = await this.#starting?.catch(() => undefined)
    await worker?.close()
    this.#relay?.close()
  }

  #startWorker (): Promise<JobWorker> {
    this.#starting ??= JobWorker.start(this.#db, {
      instanceId: this.instanceId,
      version: PGKEEP_VERSION,
      concurrency: this.#opts.concurrency,
      worker: this.#opts.mode !== 'none',
      timings: { leaseMs: this.#opts.leaseMs, heartbeatMs: Math.round(this.#opts.leaseMs / 3), pollMs: Math.min(5000, Math.round(this.#opts.leaseMs / 3)) },
      ...(this.#opts.mode === 'own' ? { claimOnly: () => [...this.#own] } : {}),
      runner: async (job, signal) => job.kind === BACKUP_JOB ? await this.#opts.hooks.run(job.id, signal) : unknownKind(job),
      onInterrupted: async job => { if (job.kind === BACKUP_JOB) await this.#opts.hooks.interrupted(job) },
    }).then(worker => {
      this.#worker = worker
      worker.on('error', ({ where, error }: { where: string, error: unknown }) => { this.#opts.hooks.onError(where, error) })
      worker.on('finished', ({ job }: { job: CatalogJob }) => { this.#own.delete(job.id) })
      return worker
    })
    return this.#starting
  }
}

function unknownKind (job: CatalogJob): JobOutcome {
  const error: JobError = { code: 'INVALID_STATE', message: `job kind "${job.kind}" is not one this pgkeep version runs` }
  return { state: 'failed', error }
}

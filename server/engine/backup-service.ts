import type { Readable } from 'node:stream'
import { uuidv7 } from 'uuidv7'
import {
  TERMINAL_STATUSES, type Backup, type BackupWithProgress, type CleanupRequest, type CleanupResult,
  type ListQuery, type ListResult, type Progress, type RestoreRequest, type SetMembership, type StoredCopy, type Verification,
} from '../../schemas/backup.ts'
import type { RestoreState } from '../../schemas/restore.ts'
import type { InstanceStatus } from '../../schemas/health.ts'
import { setStatus, type BackupSet, type SetListQuery, type SetListResult, type SetRestoreRequest, type SetRestoreState } from '../../schemas/sets.ts'
import type { Config } from '../config.ts'
import { CatalogDb } from '../catalog/catalog-db.ts'
import { PgDrillRecords } from '../catalog/pg-drill-records.ts'
import { liveInstances, newInstanceId } from '../catalog/instances.ts'
import type { CatalogJob } from '../catalog/job-queue.ts'
import type { JobOutcome } from '../catalog/job-worker.ts'
import { SharedJobs, type WorkerMode } from './shared-jobs.ts'
import type { RecordChange } from './store/registry-backend.ts'
import { BackupEvents, silentLogger, type EngineLogger } from './backup-events.ts'
import { fitCompressionToPgDump, resolveCreateRequest, type ResolvedRequest } from './backup-request.ts'
import { findPgTool } from './pg/tools.ts'
import { toolVersionsFile } from './pg/tool-versions.ts'
import { queryBackups } from './store/query.ts'
import { applicationName, runDumpJob, type DumpJobResult } from './dump/dump-job.ts'
import { cancelBackends } from './pg/inspector.ts'
import { loadDriver } from './pg/connection.ts'
import { InvalidInputError, InvalidStateError, NotFoundError, PgkeepError, toPgkeepError } from '../errors.ts'
import { JobQueue } from './job-queue.ts'
import { deleteBackupFiles, readManifest, writeManifest } from './store/manifest.ts'
import { configuredOpener } from './storage/open-storage.ts'
import { resolveBackupRef } from './store/backup-ref.ts'
import { decryptedRead } from './storage/backup-bytes.ts'
import { StorageSet, type StorageOpener } from './storage/storage-set.ts'
import { fileExtension, finalName } from './naming.ts'
import { recoverInterrupted } from './store/recovery.ts'
import { Registry } from './store/registry.ts'
import { RestoreRecords } from './store/restore-records.ts'
import { recoverRestores } from './restore/leftovers.ts'
import { manifestLags, recordInManifest } from './store/safety-facts.ts'
import { startRestore, type RestoreJob } from './restore/restore-job.ts'
import { RestoreTracker } from './restore/tracker.ts'
import { DrillService } from './drill/drill-service.ts'
import type { Drill, DrillSummary } from '../../schemas/drill.ts'
import { planRetention, validatePolicy } from './store/retention.ts'
import { DEFAULT_RETRY, type RetryPolicy } from './retry.ts'
import { discoverDatabases } from './sets/discover.ts'
import { runGlobalsDump } from './sets/globals-dump.ts'
import { setManifestKey, writeSetManifest } from './sets/set-manifest.ts'
import { retentionUnits } from './sets/set-retention.ts'
import { startSetRestore, type SetRestoreRun } from './sets/set-restore.ts'
import { generateSetName, groupSets, viewSet } from './sets/set-view.ts'
import { validateBackup } from './verify/validator.ts'
import { openVerifiedFiles, type ReadOptions, type VerifiedBackup } from './verify/open-verified.ts'

export interface BackupServiceOptions {
  logger?: EngineLogger
  retry?: RetryPolicy
  /** re-read the catalog this often to see another process's writes (registry.json: the CLI and the server share a dir; the PostgreSQL catalog: a net under its notifications); 0 = never */
  registryPollMs?: number
  /** how long a finished restore's state stays readable (default 10 minutes) */
  restoreKeepMs?: number
  /** opens a storage location (the config's, or one an older record names) */
  openStorage?: StorageOpener
  /**
   * the shared PostgreSQL catalog, already open (the server shares one with its other rooms; the caller closes
   * it). Without it, config.catalog makes the service open its own and close it with the service.
   */
  catalog?: CatalogDb
  /** with a catalog, which queued backups this process runs (shared-jobs.ts); default all */
  worker?: WorkerMode
}


interface ActiveJob {
  controller: AbortController
  progress?: Progress
  done: Promise<Backup>
  resolve: (b: Backup) => void
}

/**
 * A killed pg_dump's server backend lives on while it waits (on a lock, say) and only notices the dead socket
 * when it next writes: for every interrupted job, stop whatever still runs under its application_name.
 */
async function stopOrphanedBackends (config: Config, interrupted: Backup[], log: EngineLogger): Promise<void> {
  for (const b of interrupted) {
    const target = config.targets[b.target]
    if (!target) continue
    const stopped = await cancelBackends(target, applicationName(b.id)).catch(() => 0)
    if (stopped > 0) log.warn(`stopped ${stopped} server backend(s) left by the interrupted backup ${b.name}`)
  }
}

/** how long a finished set restore's state stays readable, as a restore's does */
const SET_RESTORE_KEEP_MS = 10 * 60_000

const READ_ONLY_ERRNOS = new Set(['EROFS', 'EACCES', 'EPERM'])

const isTerminal = (b: Backup): boolean => TERMINAL_STATUSES.includes(b.status)
const now = (): string => new Date().toISOString()

/** How a backup's end reads in pgkeep.jobs. */
function outcomeOf (b: Backup): JobOutcome {
  if (b.status === 'completed') return { state: 'done' }
  return { state: b.status === 'cancelled' ? 'cancelled' : 'failed', ...(b.error ? { error: { code: b.error.code, message: b.error.message } } : {}) }
}

/** A job stopped because this instance lost its lease or shut down: that, not "cancelled", is what it ended by. */
function interruptionOf (signal: AbortSignal): PgkeepError | undefined {
  return signal.reason instanceof PgkeepError && signal.reason.code === 'INTERRUPTED' ? signal.reason : undefined
}

/**
 * Pins given before manifests recorded them are only in registry.json: copied to the manifests at start-up, so
 * losing the registry cannot unpin them. Pins are few, so this reads few manifests; verifications catch up at
 * the next reindex (losing one costs a re-validation, not a backup).
 */
async function copyPinsToManifests (registry: Registry, stores: StorageSet, log: EngineLogger): Promise<void> {
  const lagging = async (b: Backup): Promise<boolean> => {
    if (b.status !== 'completed' || !b.pinned) return false
    try { return manifestLags((await readManifest(stores.of(b), b.name)).backup, b) } catch { return false }
  }
  const todo: Backup[] = []
  for (const b of registry.all()) if (await lagging(b)) todo.push(b)
  if (todo.length === 0) return
  await registry.update(async (all) => {
    for (const { id } of todo) {
      const b = all.get(id)
      if (b !== undefined && await lagging(b) && !await recordInManifest(stores.of(b), b)) log.warn(`manifest of ${b.name} could not be read; its pin is only in ${registry.label}`)
    }
  })
}

/**
 * The one object the HTTP routes and the CLI talk to. Owns the job queue and every status change;
 * the registry on disk is the truth, shared with other processes through its lock.
 */
export class BackupService extends BackupEvents {
  private readonly jobs = new Map<string, ActiveJob>()
  private readonly queue: JobQueue
  private readonly restoreTracker: RestoreTracker
  private readonly restoreRecords: RestoreRecords
  /** restore drills (drill/): start, follow, cancel, history */
  readonly drills: DrillService
  private readonly setRestores = new Map<string, SetRestoreRun>()
  private pollTimer?: NodeJS.Timeout
  private closing = false
  /** the catalog this service opened itself (closed with it) */
  private ownCatalog?: CatalogDb
  /** with a catalog: the shared queue, this instance's worker and the progress of jobs elsewhere */
  private shared?: SharedJobs
  private readonly remoteProgress = new Map<string, Progress>()
  /** waitFor on jobs of the shared queue, by backup id: one event listener for all of them, however many wait */
  private readonly recordWaiters = new Map<string, Set<() => void>>()

  private constructor (
    readonly config: Config,
    readonly stores: StorageSet,
    readonly registry: Registry,
    private readonly log: EngineLogger,
    private readonly retry: RetryPolicy,
    restoreKeepMs?: number,
    /** the shared PostgreSQL catalog the backups and drills are in; undefined: the files in the backups dir */
    readonly catalog?: CatalogDb,
    /** with a catalog: this process's id among the instances */
    private readonly instanceId: string = newInstanceId(),
  ) {
    super()
    this.restoreTracker = new RestoreTracker(s => this.emit('restore', s), restoreKeepMs)
    this.restoreRecords = new RestoreRecords(config.backupDir)
    this.queue = new JobQueue(config.concurrency, id => this.runJob(id))
    this.drills = new DrillService({
      config,
      stores,
      log,
      get: id => this.get(id),
      backups: () => this.registry.all(),
      recordDrill: async (id, summary) => { await this.recordDrill(id, summary) },
      announce: d => this.emit('drill', d),
      ...(catalog !== undefined
        ? { records: new PgDrillRecords(catalog), instanceId, liveInstances: async () => new Set((await liveInstances(catalog)).map(i => i.id)) }
        : {}),
    })
  }

  static async open (config: Config, opts: BackupServiceOptions = {}): Promise<BackupService> {
    const ownCatalog = opts.catalog === undefined && config.catalog !== undefined ? await CatalogDb.open(config.catalog) : undefined
    try {
      const service = await BackupService.openOn(config, opts, opts.catalog ?? ownCatalog)
      service.ownCatalog = ownCatalog
      return service
    } catch (err) {
      await ownCatalog?.close()
      throw err
    }
  }

  private static async openOn (config: Config, opts: BackupServiceOptions, catalog: CatalogDb | undefined): Promise<BackupService> {
    const log = opts.logger ?? silentLogger
    const stores = new StorageSet(config, opts.openStorage ?? configuredOpener(config))
    const registry = await Registry.open(config.backupDir, { onWarning: m => log.warn(m), manifests: stores.primary, catalog })
    try {
      return await BackupService.recoverAndStart(config, opts, stores, registry, catalog)
    } catch (err) {
      await registry.close()
      throw err
    }
  }

  /** Start-up repair after a crash (backups, restores, drills), then the service. */
  private static async recoverAndStart (config: Config, opts: BackupServiceOptions, stores: StorageSet, registry: Registry, catalog: CatalogDb | undefined): Promise<BackupService> {
    const log = opts.logger ?? silentLogger
    // a read-only backups dir (a mounted copy, a snapshot) can still be listed and read; only repair needs writes
    const unlessReadOnly = <T>(fallback: T) => (err: unknown): T => {
      if (!READ_ONLY_ERRNOS.has((err as NodeJS.ErrnoException)?.code ?? '')) throw err
      log.warn(`${config.backupDir} is not writable (${(err as NodeJS.ErrnoException).code}): start-up repair skipped; only reading commands will work`)
      return fallback
    }
    const recovered = await recoverInterrupted(registry, config.backupDir, stores, { byLease: catalog !== undefined })
      .catch(unlessReadOnly({ interrupted: [], removedPartials: [], removedPassfiles: [], problems: [] }))
    for (const b of recovered.interrupted) log.warn(`backup ${b.name} was interrupted by a crash or stop; marked failed (INTERRUPTED)`)
    for (const name of recovered.removedPartials.filter(n => !n.endsWith('.partial'))) log.info(`aborted the unfinished upload ${name}`)
    for (const problem of recovered.problems) log.warn(`start-up clean-up postponed: ${problem}`)
    for (const name of recovered.removedPassfiles) log.info(`removed the passfile directory ${name} of a pgkeep process that is gone`)
    await stopOrphanedBackends(config, recovered.interrupted, log)
    await copyPinsToManifests(registry, stores, log).catch(unlessReadOnly(undefined))
    const service = new BackupService(config, stores, registry, log, opts.retry ?? DEFAULT_RETRY, opts.restoreKeepMs, catalog)
    const restores = await recoverRestores(service.restoreRecords, config.targets, m => log.warn(m))
    for (const s of restores) {
      log.warn(`restore ${s.restoreId} into ${s.database} was interrupted by a crash or stop; marked ${s.status}${s.error ? ` (${s.error.code})` : ''}`)
      service.restoreTracker.remember(s)
    }
    await service.drills.recover().catch(unlessReadOnly(undefined))
    if (opts.registryPollMs) {
      service.pollTimer = setInterval(() => { registry.reload().catch(() => {}) }, opts.registryPollMs)
      service.pollTimer.unref()
    }
    if (catalog !== undefined) await service.joinSharedQueue(catalog, opts.worker ?? 'all')
    return service
  }

  /**
   * With a catalog, backups run through pgkeep.jobs: any instance's worker may claim them, a cancel reaches the
   * one running it, progress is relayed, and an instance that dies is found by its lease (docs/catalog.md).
   */
  private async joinSharedQueue (catalog: CatalogDb, mode: WorkerMode): Promise<void> {
    this.registry.onRemoteChange(changes => { this.announceRemote(changes) })
    const wake = (id: string): void => { for (const check of this.recordWaiters.get(id) ?? []) check() }
    this.on('status', b => { wake(b.id) })
    this.on('deleted', e => { wake(e.backupId) })
    this.shared = await SharedJobs.start(catalog, {
      mode,
      concurrency: this.config.concurrency,
      leaseMs: this.config.leaseSeconds * 1000,
      hooks: {
        run: async (id, signal) => await this.runClaimed(id, signal),
        interrupted: async job => { await this.cleanUpInterrupted(job) },
        remoteProgress: p => {
          this.remoteProgress.set(p.backupId, p)
          this.emit('progress', p, 'remote')
        },
        onError: (where, err) => { this.log.warn(`shared job queue (${where}): ${toPgkeepError(err).message}`) },
      },
    }, this.instanceId)
    await this.failOrphanedRecords().catch((err: unknown) => { this.log.warn(`start-up check of the shared queue postponed: ${toPgkeepError(err).message}`) })
  }

  /** Another instance's writes, told as this instance's own are: viewers connected here see every job. */
  private announceRemote (changes: RecordChange[]): void {
    for (const { before, after } of changes) {
      if (after === undefined) {
        if (before !== undefined) this.emit('deleted', { backupId: before.id }, 'remote')
        continue
      }
      if (isTerminal(after)) this.remoteProgress.delete(after.id)
      if (before === undefined) this.emit('created', after, 'remote')
      else this.emit('status', after, 'remote')
    }
  }

  /**
   * A backup claimed from the shared queue, run here as a local one is. The worker's signal (a cancel from any
   * instance, a lost lease, a shutdown) stops it.
   */
  private async runClaimed (id: string, signal: AbortSignal): Promise<JobOutcome> {
    // the record was committed before its job row: a notification still on its way is fetched now
    if (this.registry.get(id) === undefined) await this.registry.reload()
    const b = this.registry.get(id)
    if (b === undefined) return { state: 'failed', error: { code: 'NOT_FOUND', message: `backup ${id} is not in the catalog` } }
    if (isTerminal(b)) return outcomeOf(b)
    let resolve!: (b: Backup) => void
    const done = new Promise<Backup>(res => { resolve = res })
    const job: ActiveJob = { controller: new AbortController(), done, resolve }
    const forward = (): void => { job.controller.abort(signal.reason) }
    if (signal.aborted) forward()
    else signal.addEventListener('abort', forward, { once: true })
    this.jobs.set(id, job)
    try {
      await this.runJob(id)
      return outcomeOf(await done)
    } finally {
      signal.removeEventListener('abort', forward)
    }
  }

  /**
   * A backup whose instance stopped renewing its lease (kill -9, host gone, cut off from the catalog): failed
   * INTERRUPTED, and what it wrote removed, as start-up repair does for a local crash. A record that already ended
   * (the job finished just as its lease ran out) is left as it is. Throwing has a later sweep try again.
   */
  private async cleanUpInterrupted (job: CatalogJob): Promise<void> {
    const message = `the pgkeep instance running this backup (${job.instanceId ?? 'unknown'}) stopped renewing its lease; the partial file was removed`
    await this.failAsInterrupted(job.id, message)
  }

  /**
   * Marks one backup failed INTERRUPTED unless it already ended, then removes its files, unfinished writes and
   * backends. One already failed INTERRUPTED (by an earlier try whose removal failed) has its leftovers removed
   * again; a record that ended otherwise is left as it is.
   */
  private async failAsInterrupted (id: string, message: string): Promise<void> {
    await this.registry.reload()
    let marked: Backup | undefined
    let leftovers: Backup | undefined
    await this.registry.update(all => {
      const b = all.get(id)
      if (b === undefined) return
      if (isTerminal(b)) {
        if (b.status === 'failed' && b.error?.code === 'INTERRUPTED') leftovers = b
        return
      }
      marked = { ...b, status: 'failed', finishedAt: now(), error: { code: 'INTERRUPTED', message } }
      delete marked.ownerPid
      all.set(id, marked)
      leftovers = marked
    })
    if (leftovers === undefined) return
    if (marked !== undefined) {
      this.remoteProgress.delete(id)
      this.log.warn(`backup ${marked.name} was interrupted: ${message}`)
    }
    try {
      await this.removeWritten(leftovers)
      await stopOrphanedBackends(this.config, [leftovers], this.log)
    } finally {
      // told once its leftovers are gone (or their removal failed: the throw has a later sweep try again)
      if (marked !== undefined) {
        this.emit('status', marked)
        await this.afterMemberEnded(marked).catch(() => {})
      }
    }
  }

  /** What a backup that did not complete left in any store: its data, its manifest, an unfinished upload. */
  private async removeWritten (b: Backup): Promise<void> {
    for (const storage of new Set([this.stores.of(b), ...this.stores.destinations()])) {
      await deleteBackupFiles(storage, b.name)
      for (const write of await storage.listUnfinished()) {
        if (write.key.startsWith(b.name)) await storage.abortUnfinished(write)
      }
    }
  }

  /**
   * Records in flight whose job row is gone or ended (an instance died between the two writes, or while
   * recording a job's end) would wait forever: failed INTERRUPTED at start-up. Records younger than a lease are
   * left alone: their job row may be being written right now.
   */
  private async failOrphanedRecords (): Promise<void> {
    if (this.shared === undefined) return
    const bound = Date.now() - this.config.leaseSeconds * 1000
    const inFlight = this.registry.all().filter(b => !isTerminal(b) && Date.parse(b.createdAt) < bound)
    if (inFlight.length === 0) return
    for (const id of await this.shared.withoutLiveJob(inFlight.map(b => b.id))) {
      await this.failAsInterrupted(id, 'no pgkeep instance holds this backup\'s job (one stopped while queueing or recording it); anything it wrote was removed')
    }
  }

  // ---- reading --------------------------------------------------------------------------------

  get (id: string): Backup {
    const b = this.registry.get(id)
    if (!b) throw new NotFoundError(`backup ${id}`)
    return b
  }

  /** A backup by ID, unique ID prefix, name or latest[:TARGET] (store/backup-ref.ts). */
  resolve (ref: string): Backup {
    return resolveBackupRef(ref, this.registry.all())
  }

  list (query: ListQuery = {}): ListResult {
    return queryBackups(this.registry.ordered(), query, { newestFirst: true })
  }

  progress (id: string): Progress | undefined {
    return this.jobs.get(id)?.progress ?? this.remoteProgress.get(id)
  }

  /** Queued and running backups: this process's, or with a shared catalog every instance's. */
  active (): BackupWithProgress[] {
    return this.registry.all()
      .filter(b => !isTerminal(b) && (this.shared !== undefined || this.jobs.has(b.id)))
      .map(b => ({ backup: b, progress: this.progress(b.id) }))
  }

  /**
   * A completed backup whose files may be read now: sizes checked, bytes hashed as they are read, as the
   * download policy says (verify/open-verified.ts). Bytes that do not match are recorded as a failed verification.
   */
  async openVerified (id: string): Promise<VerifiedBackup> {
    const b = this.requireCompleted(id, 'downloaded')
    const storage = this.stores.of(b)
    const manifest = await readManifest(storage, b.name)
    return await openVerifiedFiles(b, { isDirectory: b.format === 'directory', files: manifest.files }, {
      storage,
      maxAgeSeconds: this.config.downloadVerifyMaxAgeSeconds,
      validate: async () => await this.validate(id),
      flag: async (message) => {
        this.log.warn(`backup ${b.name} failed its integrity check while being read: ${message}`)
        await this.patch(id, { verification: { at: now(), ok: false, method: 'sha256 (read)', message } })
      },
    })
  }

  /**
   * An encrypted backup decrypted on the way out (still compressed), after the same check as any read; the
   * stored bytes are hashed before age sees them, and a mismatch fails the stream and flags the backup.
   */
  async openDecrypted (id: string, opts: ReadOptions = {}): Promise<{ backup: Backup, name: string, stream: Readable }> {
    const b = this.requireCompleted(id, 'downloaded')
    if (b.encryption === undefined) throw new InvalidInputError(`decrypt: backup ${b.name} is not encrypted`, 'decrypt')
    const identityFile = this.config.encryption?.identityFile
    if (identityFile === undefined) throw new InvalidStateError(`backup ${b.name} is encrypted with age; set PGKEEP_AGE_IDENTITY_FILE (or encryption.identityFile) to download it decrypted, or download it as stored and decrypt with age -d`)
    const opened = await this.openVerified(id)
    const stored = await opened.read(opened.files[0], opts)
    return { backup: opened.backup, name: opened.backup.name.replace(/\.age$/, ''), stream: await decryptedRead(stored, identityFile) }
  }

  /** Resolves once the backup reaches completed, failed or cancelled. */
  async waitFor (id: string): Promise<Backup> {
    const job = this.jobs.get(id)
    if (job) return await job.done
    if (this.shared === undefined) return this.get(id)
    return await this.waitForRecord(id)
  }

  /** A job of the shared queue, wherever it runs: its record's changes, as every instance hears of them. */
  private async waitForRecord (id: string): Promise<Backup> {
    return await new Promise<Backup>((resolve, reject) => {
      const check = (): void => {
        const local = this.jobs.get(id)
        const b = this.registry.get(id)
        if (local === undefined && b !== undefined && !isTerminal(b)) return
        off()
        if (local !== undefined) resolve(local.done)
        else if (b === undefined) reject(new NotFoundError(`backup ${id}`))
        else resolve(b)
      }
      const off = (): void => {
        const waiters = this.recordWaiters.get(id)
        waiters?.delete(check)
        if (waiters?.size === 0) this.recordWaiters.delete(id)
      }
      const waiters = this.recordWaiters.get(id) ?? new Set()
      waiters.add(check)
      this.recordWaiters.set(id, waiters)
      check()
    })
  }

  /**
   * With a shared catalog: this instance's id, worker slots and leases, and the queue all instances share (for
   * readiness, /metrics and the dashboard). undefined without one: a lone pgkeep has no instances to tell apart.
   */
  async instanceStatus (): Promise<InstanceStatus | undefined> {
    return await this.shared?.status()
  }

  // ---- creating and running -------------------------------------------------------------------

  /** A backup, or for a set request (allDatabases, databases, globals, a whole-server target) the set's first member. */
  async create (req: unknown, createdBy: string, extra: { scheduleId?: string } = {}): Promise<Backup> {
    if (this.closing) throw new PgkeepError('QUEUE_FULL', 'pgkeep is shutting down; try again when it is back')
    const r = await this.fitToPgDump(resolveCreateRequest(req, this.config))
    this.checkFormatFitsStorage(r.format)
    if (r.set !== undefined) return (await this.createSet(r, r.set, createdBy, extra))[0]
    this.checkQueueRoom()
    // the job's first step is a connection: the driver loads while the record's write waits on its fsyncs
    loadDriver().catch(() => {})
    const createdAt = new Date()
    const backup = this.draftBackup(r, { id: uuidv7(), database: r.target.database, createdAt, createdBy, extra })
    await this.enqueueAll([backup])
    return backup
  }

  /** maxQueue counts requests: a set of 200 databases is one, or it could never be queued behind that limit. */
  private checkQueueRoom (): void {
    const queued = this.shared !== undefined ? this.registry.all().filter(b => b.status === 'queued').length : this.queue.queuedCount
    if (queued >= this.config.maxQueue) {
      throw new PgkeepError('QUEUE_FULL', `the backup queue is full (${this.config.maxQueue} waiting); try again later`)
    }
  }

  /** The record of a new job, queued. A set's members differ in database, name and kind, and carry their set. */
  private draftBackup (r: ResolvedRequest, m: { id: string, database: string, createdAt: Date, createdBy: string, extra: { scheduleId?: string }, set?: SetMembership, globals?: boolean, name?: string }): Backup {
    const recipients = this.config.encryption?.recipients ?? []
    // a globals member is pg_dumpall's plain SQL whatever the set's format
    const format = m.globals === true ? 'plain' : r.format
    // the stored name says what it takes to open it: `.age` after the codec's extension
    const ext = fileExtension(format, r.compression) + (recipients.length > 0 ? '.age' : '')
    const name = finalName(m.name ?? r.name, r.target.name, m.globals === true ? 'globals' : m.database, m.createdAt, m.id, ext)
    return {
      id: m.id,
      name,
      target: r.target.name,
      database: m.database,
      format,
      compression: r.compression,
      level: r.level,
      // scheduled backups arrive verified unless told otherwise, inline: the cheaper check by far (docs/verification.md);
      // by hand, validation is asked for
      options: { ...r.options, ...(m.globals === true ? { jobs: 1 } : {}), verify: r.options.verify ?? r.target.verify ?? (m.extra.scheduleId !== undefined ? 'inline' : 'off') },
      status: 'queued',
      createdAt: m.createdAt.toISOString(),
      createdBy: m.createdBy,
      pinned: false,
      ownerPid: process.pid,
      ...this.stores.primaryField(),
      ...(recipients.length > 0 ? { encryption: { method: 'age' as const, recipients } } : {}),
      ...(r.notes.length > 0 ? { notes: r.notes } : {}),
      ...(m.extra.scheduleId ? { scheduleId: m.extra.scheduleId } : {}),
      ...(m.set !== undefined ? { set: m.set } : {}),
      ...(m.globals === true ? { kind: 'globals' as const } : {}),
    }
  }

  /** Records the jobs (names checked unique) and queues them in order. */
  private async enqueueAll (backups: Backup[]): Promise<void> {
    await this.registry.update((all) => {
      for (const other of all.values()) {
        const clash = backups.find(b => b.name === other.name)
        if (clash) throw new PgkeepError('CONFLICT', `a backup named ${clash.name} already exists`, { details: { field: 'name' } })
      }
      for (const b of backups) all.set(b.id, b)
    })
    if (this.shared !== undefined) return await this.enqueueShared(backups)
    for (const b of backups) {
      let resolve!: (b: Backup) => void
      const done = new Promise<Backup>(res => { resolve = res })
      this.jobs.set(b.id, { controller: new AbortController(), done, resolve })
      this.emit('created', b)
    }
    for (const b of backups) this.queue.enqueue(b.id)
  }

  /** Recorded, then queued in the catalog; a queue that cannot take them fails them at once rather than leaving them queued for nobody. */
  private async enqueueShared (backups: Backup[]): Promise<void> {
    for (const b of backups) this.emit('created', b)
    try {
      await this.shared!.enqueue(backups.map(b => b.id))
    } catch (err) {
      const e = toPgkeepError(err)
      for (const b of backups) {
        await this.setStatus(b.id, { status: 'failed', finishedAt: now(), error: { code: e.code, message: `the job could not be queued in the catalog: ${e.message}` }, ownerPid: undefined }).catch(() => {})
      }
      throw e
    }
  }

  /**
   * A backup set: the databases asked of the server now (sets/discover.ts), one member per database plus the
   * globals, all queued at once so the job queue runs them in order (one at a time with the default
   * concurrency of 1, more with a higher one) and a cancel reaches each. A user-given name names the set; its
   * members are `<name>-<database>`.
   */
  private async createSet (r: ResolvedRequest, plan: NonNullable<ResolvedRequest['set']>, createdBy: string, extra: { scheduleId?: string }): Promise<Backup[]> {
    const databases = await discoverDatabases(r.target, plan.selection)
    if (databases.length === 0) throw new InvalidInputError(`databases: target ${r.target.name} has no database to back up (templates are never taken, postgres only when it holds objects, excludeDatabases left out the rest)`, 'databases')
    this.checkQueueRoom()
    const setId = uuidv7()
    const createdAt = new Date()
    const setName = r.name ?? generateSetName(r.target.name, createdAt, setId)
    const member = (database: string, weightBytes: number, globals: boolean): Backup => this.draftBackup({ ...r, name: undefined }, {
      id: uuidv7(), database, createdAt, createdBy, extra, globals,
      set: { id: setId, name: setName, weightBytes },
      ...(r.name !== undefined ? { name: `${r.name}-${globals ? 'globals' : database.replace(/[^A-Za-z0-9_-]/g, '_')}` } : {}),
    })
    const members = [
      ...(plan.globals ? [member('', 0, true)] : []),
      ...databases.map(d => member(d.name, d.sizeBytes, false)),
    ]
    await this.enqueueAll(members)
    await writeSetManifest(this.stores.primary, this.getSet(setId)).catch((err: unknown) => { this.log.warn(`the set manifest of ${setName} was not written: ${toPgkeepError(err).message}`) })
    return members
  }

  /**
   * pg_dump writes a directory-format backup itself, file by file, on local disk: it cannot be streamed to
   * object storage, teed to copies or encrypted as one stream. Refused up front, naming what works instead.
   */
  private checkFormatFitsStorage (format: string): void {
    if (format !== 'directory') return
    const { primary, copies } = this.stores
    const why = primary.localPath === undefined
      ? `backups go to ${primary.url}`
      : copies.length > 0
        ? `every backup is also copied to ${copies.map(c => c.url).join(', ')}`
        : (this.config.encryption?.recipients.length ?? 0) > 0 ? 'every backup is encrypted as one stream (PGKEEP_AGE_RECIPIENTS)' : undefined
    if (why !== undefined) {
      throw new InvalidInputError(`format: directory is written by pg_dump to local disk and cannot be streamed, and ${why}; use custom (restorable in parallel when uncompressed) or tar`, 'format')
    }
  }

  /** Directory-format compression depends on the pg_dump version; without a pg_dump the job itself reports TOOL_MISSING. */
  private async fitToPgDump (r: ResolvedRequest): Promise<ResolvedRequest> {
    if (r.format !== 'directory') return r
    const pgDump = await findPgTool('pg_dump', this.config.pgBinDir, { versionsFile: toolVersionsFile(this.config.backupDir) }).catch(() => undefined)
    return pgDump ? fitCompressionToPgDump(r, pgDump) : r
  }

  /**
   * Changes a record. A completed backup's manifest is rewritten first, under the same lock, so a pin or a
   * verification is never only in registry.json (a crash between the two leaves it in the manifest, where a
   * rebuild finds it: store/safety-facts.ts).
   */
  private async patch (id: string, fields: Partial<Backup>): Promise<Backup> {
    let updated!: Backup
    await this.registry.update(async (all) => {
      const current = all.get(id)
      if (!current) throw new NotFoundError(`backup ${id}`)
      updated = { ...current, ...fields }
      for (const [k, v] of Object.entries(fields)) if (v === undefined) delete (updated as Record<string, unknown>)[k]
      if (updated.status === 'completed' && current.status === 'completed') await this.recordEverywhere(updated)
      all.set(id, updated)
    })
    return updated
  }

  /**
   * A completed backup's pin and verification go to its manifest in every store that holds it, so any one of them
   * can rebuild the catalog; a copy that cannot take it is only warned about (its own store's manifest is the truth).
   */
  private async recordEverywhere (b: Backup): Promise<void> {
    if (!await recordInManifest(this.stores.of(b), b)) {
      this.log.warn(`manifest of ${b.name} could not be read; its pin and verification are only in ${this.registry.label}`)
    }
    for (const copy of this.stores.copiesOf(b)) {
      await recordInManifest(copy, b).catch((err: unknown) => { this.log.warn(`the manifest of ${b.name} in ${copy.url} was not updated: ${(err as Error).message}`) })
    }
  }

  /**
   * The end of a dump: manifests (beside the data in each store), then "completed", in one registry update so a
   * pin given meanwhile is in all of them. A copy whose manifest cannot be written is a failed copy.
   */
  private async complete (id: string, result: DumpJobResult, verification: Verification | undefined, facts: Partial<Backup>): Promise<Backup> {
    let completed!: Backup
    await this.registry.update(async (all) => {
      const current = all.get(id)
      if (!current) throw new NotFoundError(`backup ${id}`)
      // another instance judged this job dead (its lease ran out) and has removed what it wrote
      if (isTerminal(current)) throw new PgkeepError('INTERRUPTED', `backup ${current.name} was marked ${current.status} while its dump was finishing: ${current.error?.message ?? ''}`)
      completed = { ...this.asCompleted({ ...current, ...facts }, result), finishedAt: now(), ...(verification ? { verification } : {}) }
      if (result.copies.length > 0) completed.copies = await this.writeCopyManifests(completed, result)
      await writeManifest(this.stores.of(completed), completed, result.files)
      all.set(id, completed)
    })
    this.emit('status', completed)
    return completed
  }

  private async setStatus (id: string, fields: Partial<Backup> & Pick<Backup, 'status'>): Promise<Backup> {
    const b = await this.patch(id, fields)
    this.emit('status', b)
    return b
  }

  private async runJob (id: string): Promise<void> {
    const job = this.jobs.get(id)
    if (!job) return
    let final: Backup
    let deadline: NodeJS.Timeout | undefined
    // pg_dump's and the server's versions, the tables counted: learned before the first byte
    let facts: Partial<Backup> = {}
    let recording: Promise<unknown> | undefined
    try {
      if (job.controller.signal.aborted) throw new PgkeepError('CANCELLED', 'the backup was cancelled before it started')
      const running = { status: 'running' as const, startedAt: now(), ownerPid: process.pid, ...(this.shared !== undefined ? { instance: this.shared.instanceId } : {}) }
      // written while the dump job looks up pg_dump and inspects the target; awaited before pg_dump starts (onStarted)
      recording = this.setStatus(id, running)
      recording.catch(() => {})
      const backup: Backup = { ...this.get(id), ...running }
      for (const note of backup.notes ?? []) this.emit('log', { backupId: id, line: `pgkeep: ${note}`, at: now() })
      const target = this.config.targets[backup.target]
      if (!target) throw new PgkeepError('INVALID_INPUT', `target ${backup.target} is no longer configured`)
      deadline = this.stopAfterMaxDuration(job, target.maxDurationMinutes)
      const onProgress = (p: Omit<Progress, 'backupId'>): void => {
        job.progress = { backupId: id, ...p }
        this.emit('progress', job.progress)
        this.shared?.publishProgress(job.progress)
      }
      const onLog = (line: string): void => { this.emit('log', { backupId: id, line, at: now() }) }
      // a set member's database is its own; the target names the server
      const memberTarget = backup.set !== undefined ? { ...target, database: backup.database } : target
      const common = {
        backup,
        backupDir: this.config.backupDir,
        storages: this.stores.destinations(),
        pgBinDir: this.config.pgBinDir,
        cancelGraceMs: this.config.cancelGraceMs,
        signal: job.controller.signal,
        onProgress,
        onLog,
        // kept for the record that ends the job (completed or failed): a write of their own would tell a crash nothing
        onStarted: async (learned: Partial<Backup>) => {
          facts = learned
          await recording
        },
      }
      const result = backup.kind === 'globals'
        ? await runGlobalsDump({ ...common, target, appName: applicationName(id) })
        : await runDumpJob({
          ...common,
          target: memberTarget,
          retry: this.retry,
          onWarning: (code, message) => {
            this.log.warn(`backup ${backup.name}: ${message}`)
            this.emit('warning', { backupId: id, code, message, at: now() })
          },
          // "verifying" is written only when a verification follows the dump: otherwise it would last a rename
          onVerifying: async (r) => { if (this.verifiesAfterDump(backup)) await this.setStatus(id, { status: 'verifying', ...facts, ...r }) },
        })
      clearTimeout(deadline)
      const verification = result.verification ?? await this.verifyIfAsked(id, backup, result)
      this.shared?.endProgress(id)
      final = await this.complete(id, result, verification, facts)
    } catch (err) {
      clearTimeout(deadline)
      this.shared?.endProgress(id)
      // a job that failed while its "running" was being written ends after it, in that order
      await recording?.catch(() => {})
      const e = interruptionOf(job.controller.signal) ?? toPgkeepError(err)
      const status = e.code === 'CANCELLED' ? 'cancelled' : 'failed'
      if (e.code === 'INTERNAL') this.log.error(`backup ${id} failed unexpectedly: ${e.message}`)
      final = await this.endFailed(id, status, e, facts)
    }
    this.jobs.delete(id)
    // before the waiters hear of it: a set's last member has its set manifest rewritten first
    await this.afterMemberEnded(final).catch(() => {})
    job.resolve(final)
  }

  /**
   * The record of a job that did not complete. One another instance already ended (it judged this one dead) stays
   * as that instance wrote it; what this job went on to write after that is removed here.
   */
  private async endFailed (id: string, status: 'cancelled' | 'failed', e: PgkeepError, facts: Partial<Backup>): Promise<Backup> {
    const current = this.registry.get(id)
    if (current !== undefined && isTerminal(current) && current.status !== 'completed') {
      await this.removeWritten(current).catch(() => {})
      return current
    }
    return await this.setStatus(id, { status, ...facts, finishedAt: now(), error: { code: e.code, message: e.message }, ownerPid: undefined })
      .catch(() => ({ ...(this.registry.get(id) as Backup), status }))
  }

  /** A target's maxDurationMinutes: past it the dump is stopped as a cancel is (cleanly), and fails with TIMEOUT. */
  private stopAfterMaxDuration (job: ActiveJob, minutes: number | undefined): NodeJS.Timeout | undefined {
    if (minutes === undefined) return undefined
    const timer = setTimeout(() => {
      job.controller.abort(new PgkeepError('TIMEOUT', `the dump ran longer than the target's maxDurationMinutes (${minutes}) and was stopped; its partial file was removed`))
    }, minutes * 60_000)
    timer.unref()
    return timer
  }

  /** A set member's cancel stops the whole set: a set is one run, with one cancel. */
  async cancel (id: string): Promise<Backup> {
    const b = this.get(id)
    if (b.set !== undefined && !isTerminal(b)) {
      await this.cancelSet(b.set.id)
      return this.get(id)
    }
    if (isTerminal(b)) throw new InvalidStateError(`backup ${b.name} is already ${b.status}`)
    if (this.shared !== undefined) return await this.cancelShared(b, 'cancelled while queued')
    const job = this.jobs.get(id)
    if (!job) throw new InvalidStateError(`backup ${b.name} is run by another pgkeep process (pid ${b.ownerPid}); cancel it there`)
    job.controller.abort()
    if (this.queue.dequeue(id)) {
      // never started: nothing to kill, nothing written
      const final = await this.setStatus(id, { status: 'cancelled', finishedAt: now(), error: { code: 'CANCELLED', message: 'cancelled while queued' }, ownerPid: undefined })
      this.jobs.delete(id)
      job.resolve(final)
      return final
    }
    return await job.done
  }

  /**
   * A cancel through the catalog: a queued job ends here and now; a running one is stopped by the instance
   * running it (NOTIFY, or its next lease renewal), and this waits for the record to say so.
   */
  private async cancelShared (b: Backup, whyQueued: string): Promise<Backup> {
    const outcome = await this.shared!.cancel(b.id)
    if (outcome === 'dequeued') {
      return await this.setStatus(b.id, { status: 'cancelled', finishedAt: now(), error: { code: 'CANCELLED', message: whyQueued }, ownerPid: undefined })
    }
    if (outcome === 'requested') return await this.waitFor(b.id)
    await this.registry.reload()
    const current = this.get(b.id)
    if (isTerminal(current)) return current
    throw new InvalidStateError(`backup ${b.name} is ${current.status} but no pgkeep instance holds its job; it is marked interrupted when its lease runs out or at the next start`)
  }

  // ---- sets -----------------------------------------------------------------------------------

  listSets (query: SetListQuery = {}): SetListResult {
    const items = [...groupSets(this.registry.all()).values()]
      .map(members => viewSet(members, mid => this.progress(mid)))
      .filter(s => (query.target === undefined || s.target === query.target) && (query.status === undefined || s.status === query.status))
      .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    return { items, total: items.length }
  }

  getSet (setId: string): BackupSet {
    const members = this.setMembers(setId)
    return viewSet(members, mid => this.progress(mid))
  }

  private setMembers (setId: string): Backup[] {
    const members = groupSets(this.registry.all().filter(b => b.set?.id === setId)).get(setId)
    if (members === undefined) throw new NotFoundError(`backup set ${setId}`)
    return members
  }

  /**
   * Stops every member at once: all their signals fire before anything is awaited, so the queue cannot start
   * the next member meanwhile (a job whose signal fired ends cancelled before it starts).
   */
  async cancelSet (setId: string): Promise<BackupSet> {
    const members = this.setMembers(setId)
    const live = members.filter(m => !isTerminal(m))
    if (live.length === 0) throw new InvalidStateError(`backup set ${members[0].set!.name} is already ${setStatus(members)}`)
    if (this.shared !== undefined) {
      // every request first, then the waits: a worker must not start the next member meanwhile
      const why = 'the set was cancelled before this member started'
      await Promise.all(live.map(async m => await this.cancelShared(m, why).catch(() => undefined)))
      return this.getSet(setId)
    }
    const foreign = live.find(m => !this.jobs.has(m.id))
    if (foreign) throw new InvalidStateError(`backup set ${members[0].set!.name} is run by another pgkeep process (pid ${foreign.ownerPid}); cancel it there`)
    for (const m of live) this.jobs.get(m.id)?.controller.abort()
    const dequeued = live.filter(m => this.queue.dequeue(m.id))
    const ended: Array<[ActiveJob | undefined, Backup]> = []
    for (const m of dequeued) {
      ended.push([this.jobs.get(m.id), await this.setStatus(m.id, { status: 'cancelled', finishedAt: now(), error: { code: 'CANCELLED', message: 'the set was cancelled before this member started' }, ownerPid: undefined })])
      this.jobs.delete(m.id)
    }
    await Promise.all(live.filter(m => !dequeued.includes(m)).map(async m => await this.waitFor(m.id)))
    if (ended.length > 0) await this.afterMemberEnded(ended[0][1]).catch(() => {})
    for (const [job, final] of ended) job?.resolve(final)
    return this.getSet(setId)
  }

  /** Resolves once every member ended. */
  async waitForSet (setId: string): Promise<BackupSet> {
    await Promise.all(this.setMembers(setId).map(async m => await this.waitFor(m.id)))
    return this.getSet(setId)
  }

  async pinSet (setId: string, pinned: boolean): Promise<BackupSet> {
    for (const m of this.setMembers(setId)) {
      const b = await this.patch(m.id, { pinned })
      this.emit('status', b)
    }
    return this.getSet(setId)
  }

  /** Every member and the set manifest; refused while a member runs. */
  async deleteSet (setId: string): Promise<void> {
    const members = this.setMembers(setId)
    const running = members.find(m => !isTerminal(m))
    if (running) throw new InvalidStateError(`backup set ${running.set!.name} is ${setStatus(members)}; cancel it before deleting`)
    for (const m of members) await this.deleteOne(m.id)
    await this.stores.primary.delete(setManifestKey(members[0].set!.name))
  }

  /**
   * Rebuilds a server from a set (sets/set-restore.ts): refusals (not completed, databases already there with
   * objects, unknown target) are thrown before anything is written; the run is followed with setRestoreState.
   */
  async restoreSet (setId: string, req: SetRestoreRequest = {}): Promise<SetRestoreState> {
    const set = this.getSet(setId)
    const targetName = req.target ?? set.target
    const target = this.config.targets[targetName]
    if (!target) throw new InvalidInputError(`target: unknown target "${targetName}"`, 'target')
    const run = await startSetRestore({
      set,
      target,
      storageOf: b => this.stores.of(b),
      identityFile: this.config.encryption?.identityFile,
      skipGlobals: req.skipGlobals,
      restoreMember: async (b, r) => await this.restore(b.id, r),
      onChange: s => { this.emit('set-restore', s) },
    })
    const id = run.state().restoreId
    this.setRestores.set(id, run)
    run.done.finally(() => { setTimeout(() => this.setRestores.delete(id), SET_RESTORE_KEEP_MS).unref() }).catch(() => {})
    return run.state()
  }

  setRestoreState (restoreId: string): SetRestoreState {
    const run = this.setRestores.get(restoreId)
    if (run === undefined) throw new NotFoundError(`set restore ${restoreId}`)
    return run.state()
  }

  async waitForSetRestore (restoreId: string): Promise<SetRestoreState> {
    const run = this.setRestores.get(restoreId)
    if (run === undefined) throw new NotFoundError(`set restore ${restoreId}`)
    return await run.done
  }

  async cancelSetRestore (restoreId: string): Promise<SetRestoreState> {
    const run = this.setRestores.get(restoreId)
    if (run === undefined) throw new NotFoundError(`set restore ${restoreId}`)
    if (run.state().status !== 'running') throw new InvalidStateError(`set restore ${restoreId} is already ${run.state().status}`)
    return await run.cancel()
  }

  /** The set manifest is rewritten when the last member ends, with every member's outcome. */
  private async afterMemberEnded (b: Backup): Promise<void> {
    if (b.set === undefined) return
    const set = this.getSet(b.set.id)
    if (!set.members.every(isTerminal)) return
    await writeSetManifest(this.stores.of(b), set).catch((err: unknown) => { this.log.warn(`the set manifest of ${set.name} was not written: ${toPgkeepError(err).message}`) })
  }

  // ---- checking, restoring, deleting ----------------------------------------------------------

  private requireCompleted (id: string, verb: string): Backup {
    const b = this.get(id)
    if (b.status !== 'completed') throw new InvalidStateError(`backup ${b.name} is ${b.status}; only completed backups can be ${verb}`)
    return b
  }

  async validate (id: string): Promise<Backup> {
    const b = this.requireCompleted(id, 'validated')
    const result = await validateBackup(b, this.stores.of(b), { pgBinDir: this.config.pgBinDir, identityFile: this.config.encryption?.identityFile })
    return await this.patch(id, { verification: { at: now(), ok: result.ok, method: result.method, ...(result.message ? { message: result.message } : {}) } })
  }

  /**
   * Starts a restore once its destination was checked: a refusal (TARGET_NOT_EMPTY, NOT_FOUND, CONFLICT, a
   * wrong password) is thrown here, so the caller hears it before anything was written. Every restore is
   * recorded in `.pgkeep/restores.json`, so a crash leaves nothing unknown behind (restore/leftovers.ts).
   */
  async restore (id: string, req: RestoreRequest): Promise<RestoreJob> {
    const b = this.requireCompleted(id, 'restored')
    const targetName = req.target ?? b.target
    const target = this.config.targets[targetName]
    if (!target) throw new InvalidInputError(`target: unknown target "${targetName}"`, 'target')
    const job = startRestore(b, this.stores.of(b), this.config.backupDir, target, req, {
      pgBinDir: this.config.pgBinDir,
      cancelGraceMs: this.config.cancelGraceMs,
      identityFile: this.config.encryption?.identityFile,
      journal: async r => { await this.restoreRecords.put(r) },
    })
    const plan = await job.planned
    this.restoreTracker.track(job, b.id, req.database, plan.mode)
    return job
  }

  /** A restore's last known state; NOT_FOUND once it has been finished for longer than restoreKeepMs. */
  restoreState (restoreId: string): RestoreState {
    return this.restoreTracker.state(restoreId)
  }

  activeRestores (): RestoreState[] {
    return this.restoreTracker.active()
  }

  /** Resolves with the final state; INVALID_STATE if the restore has already ended. */
  async cancelRestore (restoreId: string): Promise<RestoreState> {
    return await this.restoreTracker.cancel(restoreId)
  }

  /** A drill's outcome on its backup, in the registry and the manifests (store/safety-facts.ts). */
  async recordDrill (id: string, drill: DrillSummary): Promise<Backup> {
    const b = await this.patch(id, { drill })
    this.emit('status', b)
    return b
  }

  activeDrills (): Drill[] {
    return this.drills.active()
  }

  /** A set member's pin pins the whole set: retention keeps or deletes a set as one. */
  async pin (id: string, pinned: boolean): Promise<Backup> {
    const member = this.get(id)
    if (member.set !== undefined) {
      await this.pinSet(member.set.id, pinned)
      return this.get(id)
    }
    const b = await this.patch(id, { pinned })
    this.emit('status', b)
    return b
  }

  /** Registry entry first, then files: a crash in between leaves orphan files, never a listed backup without its data. */
  async delete (id: string): Promise<void> {
    const b = this.get(id)
    if (b.set !== undefined) throw new InvalidStateError(`backup ${b.name} is a member of the set ${b.set.name}; delete the whole set (DELETE /api/sets/${b.set.id})`)
    await this.deleteOne(id)
  }

  private async deleteOne (id: string): Promise<void> {
    const b = this.get(id)
    if (!isTerminal(b)) throw new InvalidStateError(`backup ${b.name} is ${b.status}; cancel it before deleting`)
    await this.registry.update((all) => {
      const current = all.get(id)
      if (current && !isTerminal(current)) throw new InvalidStateError(`backup ${b.name} is ${current.status}`)
      all.delete(id)
    })
    for (const storage of [this.stores.of(b), ...this.stores.copiesOf(b)]) await deleteBackupFiles(storage, b.name)
    this.emit('deleted', { backupId: id })
  }

  /**
   * Applies the retention plan. onDeleted hears of each deletion as it happens, so a caller (the audit log) can
   * name what was deleted even when a later deletion fails and this throws.
   */
  async cleanup (req: CleanupRequest = {}, opts: { onDeleted?: (backup: Backup, reason: string) => void } = {}): Promise<CleanupResult> {
    const policy = validatePolicy(req.policy ?? this.config.retention)
    await this.registry.reload()
    // a set is one unit (sets/set-retention.ts): kept or deleted whole; the reply lists its members
    const { units, members } = retentionUnits(this.registry.all())
    const plan = planRetention(units, policy, new Date(), { target: req.target })
    const expand = (b: Backup): Backup[] => members.get(b.id) ?? [b]
    const reasonOf = (b: Backup): string => {
      const reason = plan.deleteReasons.get(b.id) ?? ''
      return members.has(b.id) ? `member of the set ${b.name}: ${reason}` : reason
    }
    if (!req.dryRun) {
      for (const b of plan.delete) {
        if (members.has(b.id)) await this.deleteSet(b.id)
        else await this.delete(b.id)
        for (const m of expand(b)) opts.onDeleted?.(m, reasonOf(b))
      }
    }
    return {
      dryRun: req.dryRun ?? false,
      deleted: plan.delete.flatMap(expand),
      deletedReasons: plan.delete.flatMap(b => expand(b).map(m => ({ id: m.id, reason: reasonOf(b) }))),
      kept: plan.keep.flatMap(k => expand(k.backup).map(m => ({ id: m.id, name: m.name, reasons: k.reasons }))),
    }
  }

  private asCompleted (current: Backup, result: DumpJobResult): Backup {
    const completed: Backup = {
      ...current, sizeBytes: result.sizeBytes, rawBytes: result.rawBytes, sha256: result.sha256, status: 'completed',
      ...(result.rowCounts ? { rowCounts: result.rowCounts } : {}),
    }
    delete completed.ownerPid
    return completed
  }

  /**
   * verify: after, and inline where pg_dump writes the files itself (directory format: there is no one stream to
   * copy to pg_restore on the way, so the same check runs once the files are in place).
   */
  private async verifyIfAsked (id: string, backup: Backup, result: DumpJobResult): Promise<Verification | undefined> {
    return this.verifiesAfterDump(backup) ? await this.verifyWritten(id, result) : undefined
  }

  private verifiesAfterDump (backup: Backup): boolean {
    const mode = backup.options.verify
    return mode === 'after' || (mode === 'inline' && backup.format === 'directory')
  }

  /**
   * verify: after. The full validation (what `validate` does) as the job's last step, while it is still
   * `verifying`: its manifest is written first (validation reads it), the verdict goes into the completed record.
   * A check that cannot run (a tool missing, the store out of reach) leaves the backup unverified, with a warning:
   * it says nothing against the bytes. Not cancellable: the data is already in place.
   */
  private async verifyWritten (id: string, result: DumpJobResult): Promise<Verification | undefined> {
    const record = { ...this.asCompleted(this.get(id), result), finishedAt: now() }
    const storage = this.stores.of(record)
    this.emit('log', { backupId: id, line: 'pgkeep: verifying the backup: checksum and a full read by pg_restore', at: now() })
    try {
      await writeManifest(storage, record, result.files)
      const r = await validateBackup(record, storage, { pgBinDir: this.config.pgBinDir, identityFile: this.config.encryption?.identityFile })
      if (!r.ok) this.log.warn(`backup ${record.name} failed its verification: ${r.message ?? 'integrity check failed'}`)
      return { at: now(), ok: r.ok, method: r.method, ...(r.message ? { message: r.message } : {}) }
    } catch (err) {
      this.log.warn(`backup ${record.name} could not be verified (${toPgkeepError(err).message}); it completes unverified`)
      return undefined
    }
  }

  /** Each copy's manifest is written like the primary's; the copies' outcomes are in every manifest. */
  private async writeCopyManifests (completed: Backup, result: DumpJobResult): Promise<StoredCopy[]> {
    const outcomes = result.copies.map(c => ({ ...c }))
    for (const c of outcomes) {
      if (c.status !== 'completed') continue
      try {
        await writeManifest(this.stores.byUrl(c.storage), { ...completed, copies: outcomes }, result.files)
      } catch (err) {
        const e = toPgkeepError(err)
        Object.assign(c, { status: 'failed', error: { code: e.code, message: `its manifest could not be written: ${e.message}` } })
        this.log.warn(`the copy of ${completed.name} in ${c.storage} failed: ${e.message}`)
        await this.stores.byUrl(c.storage).delete(completed.name).catch(() => {})
      }
    }
    return outcomes
  }

  async reindex (): Promise<{ count: number }> {
    return { count: await this.registry.rebuildFromManifests() }
  }

  /** Stops taking work; queued jobs are cancelled; running ones are cancelled or awaited. */
  async close (opts: { cancelRunning?: boolean } = {}): Promise<void> {
    this.closing = true
    if (this.pollTimer) clearInterval(this.pollTimer)
    if (this.shared !== undefined) await this.leaveSharedQueue(opts.cancelRunning === true)
    for (const id of this.queue.drainWaiting()) {
      const job = this.jobs.get(id)
      const final = await this.setStatus(id, { status: 'cancelled', finishedAt: now(), error: { code: 'CANCELLED', message: 'pgkeep shut down before this backup started' }, ownerPid: undefined })
      this.jobs.delete(id)
      job?.resolve(final)
    }
    const running = [...this.jobs.entries()]
    if (opts.cancelRunning) for (const [, job] of running) job.controller.abort()
    await Promise.all(running.map(([, job]) => job.done))
    await this.drills.close()
    await this.restoreTracker.close()
    await this.registry.close()
    await this.ownCatalog?.close()
  }

  /**
   * A server's queued jobs stay in the catalog for the other instances (or its own restart); a CLI process
   * cancels the ones it queued that nobody took. What runs here is cancelled (cancelRunning) or finished first.
   */
  private async leaveSharedQueue (cancelRunning: boolean): Promise<void> {
    const shared = this.shared!
    if (cancelRunning) {
      for (const id of shared.ownQueued) {
        const b = this.registry.get(id)
        if (b?.status === 'queued') await this.cancelShared(b, 'pgkeep exited before this backup started').catch(() => {})
      }
      for (const job of this.jobs.values()) job.controller.abort()
    }
    await shared.close()
  }
}

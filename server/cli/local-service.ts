import { rename, rm } from 'node:fs/promises'
import { userInfo } from 'node:os'
import type {
  Backup, BackupWithProgress, CleanupRequest, CleanupResult, CreateBackupRequest, ListQuery, ListResult, Progress, RestoreRequest,
} from '../../schemas/backup.ts'
import type { RestoreProgress } from '../../schemas/restore.ts'
import type { Drill, DrillRequest } from '../../schemas/drill.ts'
import type { BackupSet, SetListQuery, SetListResult, SetRestoreRequest, SetRestoreState } from '../../schemas/sets.ts'
import { writeHashed } from './write-hashed.ts'
import type { AuditStore } from '../audit/audit-log.ts'
import type { CatalogDb } from '../catalog/catalog-db.ts'
import { auditStore, openCatalog } from '../catalog/catalog-stores.ts'
import { AuditTrail, DeletionLog, restoreSubject, type AuditFields } from '../audit/audit-trail.ts'
import { loadConfig, type Config } from '../config.ts'
import type { BackupService } from '../engine/backup-service.ts'
import { PgkeepError, toPgkeepError } from '../errors.ts'
import {
  downloadPath, type BackupApi, type BackupWatcher, type DownloadResult, type RestoreWatcher, type StartedBackup, type StartedDrill, type StartedRestore, type StartedSetRestore,
} from './backup-api.ts'
import { UsageError, write, type CliIO, type Globals } from './command.ts'

/** Who the registry and the audit log record for what is done from this shell (the OS user: no login here). */
export function cliUser (): string {
  try { return `cli:${userInfo().username}` } catch { return 'cli' }
}

/** A usage error found once the engine is open (a directory backup asked for as one file) is the caller's mistake. */
const cliErrorCode = (err: unknown): string => (err instanceof UsageError ? 'INVALID_INPUT' : toPgkeepError(err).code)

/**
 * The audit log of the backups dir (or of the shared catalog), written as the OS user through the `cli` door: the
 * CLI changes the same backups as the server, so its changes are in the same log. Opened by the first entry.
 */
export class LocalAudit {
  #opened?: Promise<{ log: AuditStore, catalog?: CatalogDb }>

  /**
   * `sharedCatalog`: the engine's open catalog connection, used instead of a second one of the audit's own (its
   * owner closes it, after this).
   */
  constructor (private readonly config: Pick<Config, 'backupDir' | 'catalog'>, private readonly sharedCatalog?: () => Promise<CatalogDb | undefined>) {}

  async around<T> (action: string, fn: () => Promise<T>, fields?: (result?: T) => AuditFields): Promise<T> {
    const { log } = await this.#open()
    return await new AuditTrail(log, { user: cliUser(), door: 'cli' }).around(action, fn, fields, cliErrorCode)
  }

  async close (): Promise<void> {
    const opened = await this.#opened?.catch(() => undefined)
    await opened?.log.close()
    await opened?.catalog?.close()
  }

  /** `catalog` is set only when this opened it (and so closes it). */
  #open (): Promise<{ log: AuditStore, catalog?: CatalogDb }> {
    this.#opened ??= (async () => {
      const shared = await this.sharedCatalog?.()
      if (shared !== undefined) return { log: await auditStore(this.config.backupDir, shared) }
      const catalog = await openCatalog(this.config)
      return { log: await auditStore(this.config.backupDir, catalog), catalog }
    })()
    return this.#opened
  }
}

async function openService (io: CliIO, globals: Globals, config: Config): Promise<BackupService> {
  // loaded on first use so --help and flag errors never depend on the engine (or pay for loading it)
  const { BackupService } = await import('../engine/backup-service.ts')
  const warn = (m: string): void => write(io.stderr, `pgkeep: warning: ${m}`)
  return await BackupService.open(config, {
    logger: { info: m => { if (globals.verbose) write(io.stderr, m) }, warn, error: warn },
    // with a shared catalog a CLI process runs the backups it queued, never a server's
    worker: 'own',
  })
}

/**
 * Opens the engine on the configured backups dir for one command and always closes it, cancelling
 * anything this process still runs so no pg_dump outlives the CLI.
 */
export async function withLocalService<T> (io: CliIO, globals: Globals, fn: (service: BackupService, audit: LocalAudit) => Promise<T>): Promise<T> {
  const config = loadConfig(io.env)
  const service = await openService(io, globals, config)
  const audit = new LocalAudit(config, async () => service.catalog)
  try {
    return await fn(service, audit)
  } finally {
    // the audit log first: it writes through the service's catalog connection
    await audit.close()
    await service.close({ cancelRunning: true })
  }
}

/**
 * BackupApi over the engine in this process. The engine is opened by the first operation that needs it,
 * so a request refused up front (no retention policy) leaves the backups dir untouched.
 */
export class LocalBackupApi implements BackupApi {
  readonly origin = undefined
  private readonly config: Config
  private readonly audit: LocalAudit
  private opened?: Promise<BackupService>

  constructor (private readonly io: CliIO, private readonly globals: Globals) {
    this.config = loadConfig(io.env)
    this.audit = new LocalAudit(this.config, async () => (await this.service()).catalog)
  }

  private async service (): Promise<BackupService> {
    this.opened ??= openService(this.io, this.globals, this.config)
    return await this.opened
  }

  async close (): Promise<void> {
    // an engine that failed to open has nothing to close; its error already reached the command
    const service = await this.opened?.catch(() => undefined)
    // the audit log first: it writes through the service's catalog connection
    await this.audit.close()
    await service?.close({ cancelRunning: true })
  }

  async list (query: ListQuery): Promise<ListResult> {
    return (await this.service()).list(query)
  }

  async resolve (ref: string): Promise<Backup> {
    return (await this.service()).resolve(ref)
  }

  async delete (id: string): Promise<void> {
    const service = await this.service()
    await this.audit.around('backup.delete', async () => { await service.delete(id) }, () => ({ backupId: id }))
  }

  async status (id: string): Promise<BackupWithProgress> {
    const service = await this.service()
    const backup = service.get(id)
    const progress = service.progress(id)
    return progress ? { backup, progress } : { backup }
  }

  async create (req: CreateBackupRequest, watcher: BackupWatcher): Promise<StartedBackup> {
    const service = await this.service()
    let id: string | undefined
    let setId: string | undefined
    // a set's members all report to the one watcher; progress is then the set's (percent of all databases' bytes)
    const mine = (backupId: string): boolean => backupId === id || (setId !== undefined && service.registry.get(backupId)?.set?.id === setId)
    const progress = (p: Progress): void => {
      if (!mine(p.backupId)) return
      const sp = setId === undefined ? undefined : service.getSet(setId).progress
      watcher.progress(sp === undefined ? p : { ...p, percent: sp.percent, currentTable: sp.currentDatabase, tablesDone: sp.membersDone, tablesTotal: sp.membersTotal })
    }
    const status = (b: Backup): void => { if (mine(b.id)) watcher.status(b) }
    const log = (e: { backupId: string, line: string }): void => { if (mine(e.backupId)) watcher.log(e.line) }
    const stop = (): void => { service.off('progress', progress).off('status', status).off('log', log) }
    service.on('progress', progress).on('status', status).on('log', log)
    let backup: Backup
    try {
      backup = await this.audit.around('backup.create', async () => await service.create(req, cliUser()), created => ({ backupId: created?.set?.id ?? created?.id }))
    } catch (err) {
      stop()
      throw err
    }
    id = backup.id
    setId = backup.set?.id
    const done = service.waitFor(backup.id)
    if (setId === undefined) {
      done.then(stop, stop)
      return { backup, done, cancel: async () => { await this.cancel(backup.id) } }
    }
    const setDone = service.waitForSet(setId)
    setDone.then(stop, stop)
    return { backup, done, setDone, cancel: async () => { await this.cancel(backup.id) } }
  }

  async cancel (id: string): Promise<Backup> {
    const service = await this.service()
    return await this.audit.around('backup.cancel', async () => await service.cancel(id), () => ({ backupId: id }))
  }

  async validate (id: string): Promise<Backup> {
    const service = await this.service()
    return await this.audit.around('backup.validate', async () => await service.validate(id), () => ({ backupId: id }))
  }

  async pin (id: string, pinned: boolean): Promise<Backup> {
    const service = await this.service()
    return await this.audit.around('backup.pin', async () => await service.pin(id, pinned), () => ({ backupId: id }))
  }

  /** Without a policy in the request, the config file's; refused before the engine is opened when neither has one. */
  async cleanup (req: CleanupRequest): Promise<CleanupResult> {
    const policy = req.policy ?? this.config.retention
    if (!policy || Object.keys(policy).length === 0) throw new UsageError('no retention policy: give --keep-last, --max-age-days, --keep-daily, --keep-weekly or --keep-monthly, or set "retention" in the config file')
    const service = await this.service()
    const deletions = new DeletionLog()
    return await this.audit.around('backup.cleanup', async () => await service.cleanup({ ...req, policy }, deletions), () => ({
      dryRun: req.dryRun === true, ...deletions.fields(),
    }))
  }

  /** A copy of the stored file, after the engine's integrity check; hashed again once copied, before the rename. */
  async download (id: string, output?: string, opts: { decrypt?: boolean } = {}): Promise<DownloadResult> {
    const service = await this.service()
    const copy = opts.decrypt === true ? this.decryptOut.bind(this) : this.copyOut.bind(this)
    return await this.audit.around('backup.download', async () => await copy(service, id, output), () => ({ backupId: id }))
  }

  /** Decrypted with this machine's identity file; the stored bytes are checked against the manifest on the way. */
  private async decryptOut (service: BackupService, id: string, output?: string): Promise<DownloadResult> {
    const { backup, stream } = await service.openDecrypted(id)
    const file = downloadPath(backup, output, true)
    const { bytes, sha256 } = await writeHashed(stream, `${file}.partial`)
    await rename(`${file}.partial`, file)
    return { path: file, bytes, sha256, verified: true }
  }

  private async copyOut (service: BackupService, id: string, output?: string): Promise<DownloadResult> {
    const backup = service.get(id)
    const path = service.stores.of(backup).localPath?.(backup.name) ?? backup.name
    // refused before the integrity check: however sound, a directory is not one file to copy
    if (backup.status === 'completed' && backup.format === 'directory') throw new UsageError(`backup ${backup.name} is a directory at ${path}; copy it from there or use --server for a tar`)
    const opened = await service.openVerified(id)
    const stored = opened.files[0]
    const file = downloadPath(backup, output)
    // hashed on the way (a mismatch fails the read and flags the backup): what reaches the disk is exactly what was checked
    const { bytes, sha256 } = await writeHashed(await opened.read(stored), `${file}.partial`)
    if (sha256 !== stored.sha256) {
      await rm(`${file}.partial`, { force: true })
      throw new PgkeepError('INTEGRITY_FAILED', `${path} has sha256 ${sha256}, its manifest says ${stored.sha256}; run pgkeep validate ${id}`)
    }
    await rename(`${file}.partial`, file)
    return { path: file, bytes, sha256, verified: true }
  }

  async listSets (query: SetListQuery): Promise<SetListResult> {
    return (await this.service()).listSets(query)
  }

  async getSet (id: string): Promise<BackupSet> {
    return (await this.service()).getSet(id)
  }

  async restoreSet (id: string, req: SetRestoreRequest, onChange: (s: SetRestoreState) => void): Promise<StartedSetRestore> {
    const service = await this.service()
    const set = service.getSet(id)
    const listener = (s: SetRestoreState): void => { if (s.setId === id) onChange(s) }
    service.on('set-restore', listener)
    try {
      const state = await this.audit.around('backup.restore', async () => await service.restoreSet(id, req), () => ({ backupId: id, subject: `the whole set onto target ${req.target ?? set.target}` }))
      const done = service.waitForSetRestore(state.restoreId)
      done.finally(() => service.off('set-restore', listener)).catch(() => {})
      return { set, state, done, cancel: async () => { await service.cancelSetRestore(state.restoreId).catch(() => {}) } }
    } catch (err) {
      service.off('set-restore', listener)
      throw err
    }
  }

  async restore (id: string, req: RestoreRequest, watcher: RestoreWatcher): Promise<StartedRestore> {
    const service = await this.service()
    const { backup, job } = await this.audit.around('backup.restore', async () => {
      const job = await service.restore(id, req)
      return { backup: service.get(id), job, mode: (await job.planned).mode }
    }, r => ({ backupId: id, ...(r ? { subject: restoreSubject(req.target ?? r.backup.target, req.database, r.mode) } : {}) }))
    job.on('log', (line: string) => watcher.log(line))
    job.on('progress', (p: RestoreProgress) => watcher.progress(p))
    return { backup, done: job.done, cancel: async () => { await this.audit.around('restore.cancel', async () => { await job.cancel() }, () => ({ backupId: id })) } }
  }

  async drill (req: DrillRequest, progress: (d: Drill) => void): Promise<StartedDrill> {
    const service = await this.service()
    let id: string | undefined
    const onDrill = (d: Drill): void => { if (d.id === id && d.status === 'running') progress(d) }
    service.on('drill', onDrill)
    let drill: Drill
    try {
      drill = await this.audit.around('drill.start', async () => await service.drills.start(req, cliUser()), d => ({ backupId: d?.backupId }))
    } catch (err) {
      service.off('drill', onDrill)
      throw err
    }
    id = drill.id
    const done = service.drills.waitFor(drill.id)
    done.finally(() => service.off('drill', onDrill)).catch(() => {})
    return { drill, done, cancel: async () => { await this.audit.around('drill.cancel', async () => { await service.drills.cancel(drill.id) }, () => ({ backupId: drill.backupId })) } }
  }
}

import { uuidv7 } from 'uuidv7'
import type { Backup } from '../../../schemas/backup.ts'
import type { Drill, DrillListQuery, DrillRequest, DrillSummary } from '../../../schemas/drill.ts'
import type { DrillSettings } from '../../config-drills.ts'
import type { Config, Target } from '../../config.ts'
import { InvalidInputError, InvalidStateError, NotFoundError, PgkeepError, toPgkeepError } from '../../errors.ts'
import type { EngineLogger } from '../backup-events.ts'
import { dropDatabase } from '../restore/database.ts'
import { backupBytes } from '../storage/backup-bytes.ts'
import type { StorageSet } from '../storage/storage-set.ts'
import { DrillRecords, type DrillRecord, type DrillStore } from '../store/drill-records.ts'
import { pidStillOwns } from '../store/file-lock.ts'
import { DrillRun, drillDatabaseName } from './drill-job.ts'
import { hostname } from 'node:os'

/** What the drills need of the backup service: the backups, and a way to record a drill's outcome on one. */
export interface DrillHost {
  config: Config
  stores: StorageSet
  get: (id: string) => Backup
  backups: () => Backup[]
  recordDrill: (backupId: string, summary: DrillSummary) => Promise<void>
  announce: (drill: Drill) => void
  log: EngineLogger
  /** where drills are recorded; default `.pgkeep/drills.json` in the backups dir */
  records?: DrillStore
  /** with a shared catalog: this instance's id, and the ids of the instances alive now (who may still run a drill) */
  instanceId?: string
  liveInstances?: () => Promise<ReadonlySet<string>>
}

export const DRILL_INTERRUPTED_MESSAGE = 'pgkeep stopped while this drill was running; its scratch databases were dropped at the next start'

/** A record as the API shows it: what a crash needs (pid, scratch names) stays in the store. */
export function publicDrill (r: DrillRecord): Drill {
  const { ownerPid: _pid, ownerHost: _host, instance: _instance, scratch: _scratch, leftovers: _left, ...drill } = r
  return drill
}

/** host:port of a server, never its user or password. */
function serverLabel (t: Target): string {
  return `${t.host}:${t.port}`
}

/** The drill settings of a target, or the plain default (its own server, no assertions) for hand-made configs. */
export function settingsFor (config: Config, targetName: string): DrillSettings<Target> | undefined {
  const configured = config.drill?.[targetName]
  if (configured) return configured
  const target = config.targets[targetName]
  if (!target) return undefined
  return { server: target, ownServer: false, assertions: [], statementTimeoutMs: 60_000, estimateTolerance: 0.1 }
}

/**
 * Restore drills (docs/drills.md): starts them, follows the running ones, keeps the history
 * (`.pgkeep/drills.json` or the catalog), and at start-up drops what a dead drill left on its server.
 */
export class DrillService {
  private readonly running = new Map<string, DrillRun>()
  /** each drill until its outcome is on the backup too: resolves with its final record */
  private readonly ending = new Map<string, Promise<DrillRecord>>()
  readonly records: DrillStore
  private closing = false

  constructor (private readonly host: DrillHost) {
    this.records = host.records ?? new DrillRecords(host.config.backupDir)
  }

  /** The backup a request names: by id (completed only), or the newest completed one of a target. */
  private pick (req: DrillRequest): Backup {
    if (req.backupId !== undefined) {
      const b = this.host.get(req.backupId)
      if (b.status !== 'completed') throw new InvalidStateError(`backup ${b.name} is ${b.status}; only completed backups can be drilled`)
      return b
    }
    const names = Object.keys(this.host.config.targets)
    const target = req.target ?? (names.includes('default') ? 'default' : names.length === 1 ? names[0] : undefined)
    if (target === undefined) throw new InvalidInputError(`target: say which target to drill (configured: ${names.join(', ')})`, 'target')
    if (!this.host.config.targets[target]) throw new InvalidInputError(`target: unknown target "${target}" (configured: ${names.join(', ')})`, 'target')
    const newest = this.host.backups().filter(b => b.target === target && b.status === 'completed')
      .sort((a, b) => (b.finishedAt ?? b.createdAt).localeCompare(a.finishedAt ?? a.createdAt))[0]
    if (!newest) throw new NotFoundError(`a completed backup of target "${target}" to drill`)
    return newest
  }

  /**
   * Starts a drill and returns it running. Its scratch database's name is in the store before anything is
   * created, so a crash from here on leaves nothing the next start does not drop.
   */
  async start (req: DrillRequest, createdBy: string, opts: { scheduled?: boolean } = {}): Promise<Drill> {
    if (this.closing) throw new PgkeepError('QUEUE_FULL', 'pgkeep is shutting down; try again when it is back')
    const backup = this.pick(req)
    const settings = settingsFor(this.host.config, backup.target)
    const source = this.host.config.targets[backup.target]
    if (!settings || !source) throw new InvalidStateError(`target "${backup.target}" of backup ${backup.name} is no longer configured`)
    const storage = this.host.stores.of(backup)
    const identityFile = this.host.config.encryption?.identityFile
    // an encrypted backup without its key is refused now, not after a scratch database was made
    backupBytes(backup, storage, identityFile)
    const id = uuidv7()
    const record: DrillRecord = {
      id,
      backupId: backup.id,
      backupName: backup.name,
      target: backup.target,
      database: drillDatabaseName(id),
      server: serverLabel(settings.server),
      status: 'running',
      checks: [],
      createdBy,
      ...(opts.scheduled ? { scheduled: true } : {}),
      startedAt: new Date().toISOString(),
      ownerPid: process.pid,
      ownerHost: hostname(),
      ...(this.host.instanceId !== undefined ? { instance: this.host.instanceId } : {}),
      scratch: [drillDatabaseName(id)],
    }
    await this.records.put(record)
    const run = new DrillRun(record, {
      backup, storage, settings, source, identityFile,
      backupDir: this.host.config.backupDir,
      pgBinDir: this.host.config.pgBinDir,
      cancelGraceMs: this.host.config.cancelGraceMs,
      save: async r => { await this.records.put(r) },
    })
    this.running.set(id, run)
    run.on('change', (r: DrillRecord) => this.host.announce(publicDrill(r)))
    const ending = run.done.then(async final => {
      await this.recordOnBackup(final)
      this.running.delete(id)
      this.ending.delete(id)
      // announced once more after the backup carries it, so a viewer refreshing on the end sees the badge
      this.host.announce(publicDrill(final))
      return final
    })
    this.ending.set(id, ending)
    this.host.announce(publicDrill(record))
    return publicDrill(record)
  }

  /** A finished drill (not a cancelled one: it proved nothing) goes on the backup, registry and manifest. */
  private async recordOnBackup (d: DrillRecord): Promise<void> {
    if (d.status !== 'passed' && d.status !== 'failed') return
    const failed = d.error?.message ?? d.checks.filter(c => !c.ok).map(c => `${c.name}: ${c.message}`).join('; ')
    const summary: DrillSummary = {
      id: d.id, at: d.finishedAt ?? new Date().toISOString(), ok: d.status === 'passed', server: d.server,
      ...(d.restoreMs !== undefined ? { restoreMs: d.restoreMs } : {}),
      ...(d.status === 'failed' && failed ? { message: failed.slice(0, 500) } : {}),
    }
    await this.host.recordDrill(d.backupId, summary).catch((err: unknown) => {
      this.host.log.warn(`the drill ${d.id} of ${d.backupName} was not recorded on the backup: ${toPgkeepError(err).message}`)
    })
  }

  /** Resolves with the final drill. */
  async waitFor (id: string): Promise<Drill> {
    const ending = this.ending.get(id)
    if (ending) return publicDrill(await ending)
    return await this.get(id)
  }

  async get (id: string): Promise<Drill> {
    const run = this.running.get(id)
    if (run) return publicDrill(run.current)
    const r = await this.records.get(id)
    if (!r) throw new NotFoundError(`drill ${id}`)
    return publicDrill(r)
  }

  /** Newest first; a running drill of this process with its live progress. */
  async list (query: DrillListQuery = {}): Promise<Drill[]> {
    const all = (await this.records.all()).map(r => this.running.get(r.id)?.current ?? r)
      .filter(r => (query.backupId === undefined || r.backupId === query.backupId) && (query.target === undefined || r.target === query.target))
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt))
    return all.slice(0, query.limit ?? 100).map(publicDrill)
  }

  active (): Drill[] {
    return [...this.running.values()].map(r => publicDrill(r.current))
  }

  async cancel (id: string): Promise<Drill> {
    const run = this.running.get(id)
    if (run) return publicDrill(await run.cancel())
    const r = await this.records.get(id)
    if (!r) throw new NotFoundError(`drill ${id}`)
    if (r.status !== 'running') throw new InvalidStateError(`drill ${id} is already ${r.status}`)
    throw new InvalidStateError(`drill ${id} is run by another pgkeep process (pid ${r.ownerPid}); cancel it there`)
  }

  /**
   * Start-up: a drill whose process is gone is marked failed (INTERRUPTED) and every scratch database it
   * recorded is dropped; a server out of reach keeps them in `leftovers` for the next start.
   */
  async recover (): Promise<void> {
    const records = await this.records.all()
    const elsewhere = (r: DrillRecord): boolean => r.ownerHost !== undefined && r.ownerHost !== hostname()
    // asked of the catalog only when a running drill is on another host (most starts have none)
    const live = records.some(r => r.status === 'running' && elsewhere(r)) ? await this.host.liveInstances?.() : undefined
    const ownerGone = (r: DrillRecord): boolean => {
      if (r.status !== 'running') return true
      // a drill on another host (a shared catalog): its instance's heartbeat says whether it runs, not a pid here
      if (elsewhere(r)) return live !== undefined && r.instance !== undefined && !live.has(r.instance)
      return !pidStillOwns(r.ownerPid, Date.parse(r.startedAt))
    }
    const dead = records.filter(r => (r.status === 'running' || (r.leftovers?.length ?? 0) > 0) && ownerGone(r))
    if (dead.length === 0) return
    const settled: DrillRecord[] = []
    for (const r of dead) {
      const names = r.status === 'running' ? r.scratch : r.leftovers ?? []
      const settings = settingsFor(this.host.config, r.target)
      const left: string[] = []
      for (const name of names) {
        if (!settings) { left.push(name); continue }
        await dropDatabase({ ...settings.server, name: r.target }, name).catch(() => { left.push(name) })
      }
      if (left.length > 0) this.host.log.warn(`drill ${r.id}: could not drop ${left.join(', ')} on ${r.server}; tried again at the next start`)
      const ended: DrillRecord = r.status === 'running'
        ? { ...r, status: 'failed', error: { code: 'INTERRUPTED', message: DRILL_INTERRUPTED_MESSAGE }, finishedAt: new Date().toISOString() }
        : { ...r }
      delete ended.progress
      if (left.length > 0) ended.leftovers = left
      else delete ended.leftovers
      settled.push(ended)
      if (r.status === 'running') this.host.log.warn(`drill ${r.id} of ${r.backupName} was interrupted by a crash or stop; marked failed (INTERRUPTED), its scratch databases dropped`)
    }
    await this.records.update(all => {
      for (const s of settled) {
        const current = all.get(s.id)
        // another process may have settled it meanwhile
        if (current && current.status === dead.find(d => d.id === s.id)?.status) all.set(s.id, s)
      }
    })
  }

  /** Cancels every running drill (their scratch databases dropped) and waits for them. */
  async close (): Promise<void> {
    this.closing = true
    await Promise.all([...this.running.values()].map(async r => await r.cancel().catch(() => undefined)))
    await Promise.all([...this.ending.values()])
  }
}

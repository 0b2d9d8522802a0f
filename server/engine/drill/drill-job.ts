import { EventEmitter } from 'node:events'
import type { Backup } from '../../../schemas/backup.ts'
import type { DrillCheck, DrillProgress, DrillStatus } from '../../../schemas/drill.ts'
import type { RestoreProgress } from '../../../schemas/restore.ts'
import type { DrillSettings } from '../../config-drills.ts'
import type { Target } from '../../config.ts'
import { PgkeepError, toPgkeepError } from '../../errors.ts'
import { withTargetClient } from '../pg/connection.ts'
import { findPgTool } from '../pg/tools.ts'
import { dropDatabase } from '../restore/database.ts'
import { startRestore, type RestoreJob } from '../restore/restore-job.ts'
import { backupBytes } from '../storage/backup-bytes.ts'
import type { Storage } from '../storage/storage.ts'
import type { DrillRecord } from '../store/drill-records.ts'
import { readArchiveToc } from './archive-toc.ts'
import { assertionCheck, objectsCheck, rowCountsCheck } from './checks.ts'

export interface DrillContext {
  backup: Backup
  storage: Storage
  backupDir: string
  settings: DrillSettings<Target>
  /** the backup's own target: where the reltuples estimates come from */
  source: Target
  pgBinDir?: string
  cancelGraceMs: number
  identityFile?: string
  /** durable: awaited before each database the drill creates (store/drill-records.ts) */
  save: (record: DrillRecord) => Promise<void>
}

// pg_restore's and psql's error lines (LC_MESSAGES=C); pgkeep's own notes start with "pgkeep:"
const ERROR_LINE = /^(?:pg_restore|psql)\b.*\b(?:error|fatal):|\b(?:ERROR|FATAL|PANIC):/
const MAX_ERROR_LINES = 200

/** The scratch database of drill `id`: its random tail keeps two drills apart, and says whose it is. */
export function drillDatabaseName (drillId: string): string {
  return `pgkeep_drill_${drillId.replace(/-/g, '').slice(-8)}`
}

/**
 * One drill: restore into the scratch database, the checks, and the drop, whatever happened before it.
 * Emits 'change' (DrillRecord) on every visible step; `done` resolves with the final record, never rejects.
 */
export class DrillRun extends EventEmitter {
  readonly done: Promise<DrillRecord>
  private record: DrillRecord
  private restore: RestoreJob | undefined
  private cancelling = false
  private phase: DrillProgress['phase'] = 'starting'

  constructor (initial: DrillRecord, private readonly ctx: DrillContext) {
    super()
    this.record = initial
    this.done = this.run()
  }

  get current (): DrillRecord { return this.record }

  private get scratchTarget (): Target {
    return { ...this.ctx.settings.server, database: this.record.database }
  }

  private change (fields: Partial<DrillRecord>): void {
    this.record = { ...this.record, ...fields }
    this.emit('change', this.record)
  }

  private progress (p: Omit<DrillProgress, 'phase'> = {}): void {
    this.change({ progress: { phase: this.phase, ...p } })
  }

  private async remember (name: string): Promise<void> {
    if (this.record.scratch.includes(name)) return
    this.record = { ...this.record, scratch: [...this.record.scratch, name] }
    await this.ctx.save(this.record)
  }

  private checkCancelled (): void {
    if (this.cancelling) throw new PgkeepError('CANCELLED', `the drill of ${this.ctx.backup.name} was cancelled`)
  }

  private async run (): Promise<DrillRecord> {
    const started = Date.parse(this.record.startedAt)
    const checks: DrillCheck[] = []
    let error: { code: string, message: string } | undefined
    try {
      this.phase = 'restoring'
      this.progress()
      const restore = await this.restoreBackup()
      checks.push(restore.check)
      if (restore.check.ok) {
        this.phase = 'checking'
        for (const step of this.checkSteps()) {
          this.checkCancelled()
          this.progress({ check: step.name })
          checks.push(await step.run().catch((err: unknown) => {
            this.checkCancelled()
            return { kind: step.kind, name: step.name, ok: false, message: `could not be checked: ${toPgkeepError(err).message}` } satisfies DrillCheck
          }))
          this.change({ checks: [...checks] })
        }
      } else {
        for (const step of this.checkSteps()) checks.push({ kind: step.kind, name: step.name, ok: false, skipped: true, message: 'not checked: the restore failed' })
      }
    } catch (err) {
      const e = toPgkeepError(err)
      error = { code: this.cancelling ? 'CANCELLED' : e.code, message: this.cancelling ? `the drill of ${this.ctx.backup.name} was cancelled` : e.message }
    }
    const leftovers = await this.dropScratch()
    const status: DrillStatus = this.cancelling ? 'cancelled' : error === undefined && checks.every(c => c.ok) ? 'passed' : 'failed'
    const finishedAt = new Date().toISOString()
    this.record = {
      ...this.record,
      status,
      checks,
      finishedAt,
      durationMs: Date.now() - started,
      ...(error ? { error } : {}),
      ...(leftovers.length > 0 ? { leftovers } : {}),
    }
    delete this.record.progress
    delete this.record.ownerPid
    if (leftovers.length === 0) delete this.record.leftovers
    await this.ctx.save(this.record).catch(() => {})
    this.emit('change', this.record)
    return this.record
  }

  /** Check 1, by running the restore: every error line the tool printed is kept. */
  private async restoreBackup (): Promise<{ check: DrillCheck }> {
    const { backup, settings } = this.ctx
    const errors: string[] = []
    const job = startRestore(backup, this.ctx.storage, this.ctx.backupDir, { ...settings.server, name: this.record.target },
      { database: this.record.database, create: true }, {
        pgBinDir: this.ctx.pgBinDir,
        cancelGraceMs: this.ctx.cancelGraceMs,
        identityFile: this.ctx.identityFile,
        // the restore's own scratch name is recorded here before it is created, like the drill's
        journal: async r => { if (r.scratch) await this.remember(r.scratch) },
      })
    this.restore = job
    if (this.cancelling) await job.cancel()
    job.on('log', (line: string) => { if (ERROR_LINE.test(line) && errors.length < MAX_ERROR_LINES) errors.push(line) })
    job.on('progress', (p: RestoreProgress) => { if (this.phase === 'restoring') this.progress({ restore: p }) })
    try {
      const result = await job.done
      this.change({ restoreMs: result.durationMs, bytes: backup.sizeBytes })
      return { check: { kind: 'restore', name: 'restore', ok: errors.length === 0, message: errors.length === 0 ? `restored in ${(result.durationMs / 1000).toFixed(1)} s without errors` : `restored, but the tool printed ${errors.length} error line(s)`, ...(errors.length > 0 ? { errors } : {}), durationMs: result.durationMs } }
    } catch (err) {
      this.checkCancelled()
      const e = toPgkeepError(err)
      // a restore that cannot start (no server, no rights) is the drill's failure, not a finding about the backup
      if (e.code === 'PG_CONNECTION_FAILED' || e.code === 'PG_AUTH_FAILED' || e.code === 'TOOL_MISSING' || e.code === 'CONFLICT') throw e
      return { check: { kind: 'restore', name: 'restore', ok: false, message: `${e.code}: ${e.message}`, errors: errors.length > 0 ? errors : [e.message] } }
    } finally {
      this.restore = undefined
    }
  }

  private checkSteps (): Array<{ kind: DrillCheck['kind'], name: string, run: () => Promise<DrillCheck> }> {
    const { backup, settings } = this.ctx
    return [
      {
        kind: 'objects',
        name: 'objects',
        run: async () => {
          const tool = await findPgTool('pg_restore', this.ctx.pgBinDir)
          const toc = await readArchiveToc(tool.path, backup, backupBytes(backup, this.ctx.storage, this.ctx.identityFile))
          return await objectsCheck(this.scratchTarget, toc)
        },
      },
      { kind: 'rowCounts', name: 'rowCounts', run: async () => await rowCountsCheck(this.scratchTarget, backup, this.ctx.source, settings.estimateTolerance) },
      ...settings.assertions.map(a => ({ kind: 'assertion' as const, name: a.name, run: async () => await assertionCheck(this.scratchTarget, a, settings.statementTimeoutMs) })),
    ]
  }

  /** Every database the drill may have made, dropped; the names that could not be are returned for the next start. */
  private async dropScratch (): Promise<string[]> {
    this.phase = 'dropping'
    this.progress()
    const left: string[] = []
    for (const name of [...this.record.scratch].reverse()) {
      await dropDatabase({ ...this.ctx.settings.server, name: this.record.target }, name).catch(() => { left.push(name) })
    }
    return left
  }

  /** Stops the restore, or cuts the checks' sessions off; the drop still runs. Resolves once the drill ended. */
  async cancel (): Promise<DrillRecord> {
    if (!this.cancelling) {
      this.cancelling = true
      await this.restore?.cancel()
      if (this.phase === 'checking') {
        await withTargetClient({ ...this.ctx.settings.server, database: 'postgres' }, async client => {
          await client.query('SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()', [this.record.database])
        }).catch(() => {})
      }
    }
    return await this.done
  }
}

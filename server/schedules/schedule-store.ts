import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Type, type Static } from 'typebox'
import { compileOnUse } from '../compile-on-use.ts'
import { CreateBackupRequest, RetentionPolicy } from '../../schemas/backup.ts'
import { MissedRun } from '../../schemas/schedule.ts'
import { writeFileAtomic } from '../engine/store/atomic-file.ts'
import { PgkeepError } from '../errors.ts'

/** A schedule as stored: what the API accepted, without the derived fields (next runs, source). */
export const StoredSchedule = Type.Object({
  name: Type.String(),
  cron: Type.String(),
  timezone: Type.Optional(Type.String()),
  backup: CreateBackupRequest,
  retention: Type.Optional(RetentionPolicy),
  enabled: Type.Boolean(),
  createdAt: Type.String(),
  createdBy: Type.String(),
})
export type StoredSchedule = Static<typeof StoredSchedule>

/** Run bookkeeping, kept for config schedules too so missed runs are noticed across restarts. */
export const ScheduleState = Type.Object({
  /** the latest fire time that was handled (run or reported missed); later ones not run are missed */
  lastTickAt: Type.String(),
  lastRunAt: Type.Optional(Type.String()),
  lastBackupId: Type.Optional(Type.String()),
  missed: Type.Array(MissedRun),
})
export type ScheduleState = Static<typeof ScheduleState>

const StoreFile = Type.Object({
  version: Type.Literal(1),
  schedules: Type.Array(StoredSchedule),
  state: Type.Record(Type.String(), ScheduleState),
})
type StoreFile = Static<typeof StoreFile>
const checkStoreFile = compileOnUse(StoreFile)

export const MAX_MISSED_KEPT = 20

/**
 * Where schedules and their run state are kept: schedules.json (ScheduleStore) or the shared catalog
 * (PgScheduleStore). Reads are synchronous, from what the store holds in memory; writes are awaited.
 */
export interface StoredSchedules {
  /** where the schedules are kept, for messages */
  readonly path: string
  schedules (): StoredSchedule[]
  state (name: string): ScheduleState | undefined
  putSchedule (s: StoredSchedule): Promise<void>
  removeSchedule (name: string): Promise<void>
  putState (name: string, state: ScheduleState): Promise<void>
  /** Drops state of schedules that no longer exist (a config schedule removed from the file). */
  pruneState (keep: Set<string>): Promise<void>
  /** Resolves once every change made so far is kept. */
  flush (): Promise<void>
  /** A store shared with other instances calls fn with the name of each schedule they created, changed or removed. */
  watch? (fn: (name: string) => void): () => void
  close? (): Promise<void>
}

/**
 * schedules.json under <backupDir>/.pgkeep (0600): API-created schedules and every schedule's run
 * state. Writes are atomic and serialized; only the server writes it, so no inter-process lock.
 */
export class ScheduleStore implements StoredSchedules {
  readonly path: string
  #data: StoreFile
  #writing: Promise<void> = Promise.resolve()

  private constructor (path: string, data: StoreFile) {
    this.path = path
    this.#data = data
  }

  static async open (backupDir: string): Promise<ScheduleStore> {
    const dir = join(backupDir, '.pgkeep')
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const path = join(dir, 'schedules.json')
    let raw: unknown
    try {
      raw = JSON.parse(await readFile(path, 'utf8'))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new ScheduleStore(path, { version: 1, schedules: [], state: {} })
      throw new PgkeepError('CONFIG_INVALID', `${path} is not valid JSON; fix or remove it (schedules created over the API live there)`)
    }
    if (!checkStoreFile.Check(raw)) {
      throw new PgkeepError('CONFIG_INVALID', `${path} does not match the schedules file format; fix or remove it`)
    }
    return new ScheduleStore(path, raw)
  }

  schedules (): StoredSchedule[] {
    return this.#data.schedules.map(s => structuredClone(s))
  }

  state (name: string): ScheduleState | undefined {
    const s = this.#data.state[name]
    return s && structuredClone(s)
  }

  async putSchedule (s: StoredSchedule): Promise<void> {
    const i = this.#data.schedules.findIndex(x => x.name === s.name)
    if (i >= 0) this.#data.schedules[i] = structuredClone(s)
    else this.#data.schedules.push(structuredClone(s))
    await this.#save()
  }

  async removeSchedule (name: string): Promise<void> {
    this.#data.schedules = this.#data.schedules.filter(s => s.name !== name)
    delete this.#data.state[name]
    await this.#save()
  }

  async putState (name: string, state: ScheduleState): Promise<void> {
    this.#data.state[name] = { ...structuredClone(state), missed: state.missed.slice(0, MAX_MISSED_KEPT) }
    await this.#save()
  }

  /** Drops state of schedules that no longer exist (a config schedule removed from the file). */
  async pruneState (keep: Set<string>): Promise<void> {
    let changed = false
    for (const name of Object.keys(this.#data.state)) {
      if (!keep.has(name)) { delete this.#data.state[name]; changed = true }
    }
    if (changed) await this.#save()
  }

  /** Resolves once every change made so far is on disk. */
  async flush (): Promise<void> {
    await this.#writing
  }

  async #save (): Promise<void> {
    // each write snapshots the data when it runs, so a queue of writes ends with the latest state
    const next = this.#writing.catch(() => {}).then(async () => {
      await writeFileAtomic(this.path, JSON.stringify(this.#data, null, 2) + '\n', 0o600)
    })
    this.#writing = next
    await next
  }
}

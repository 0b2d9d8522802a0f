import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Drill } from '../../../schemas/drill.ts'
import { removeStaleTempFiles, writeFileAtomic } from './atomic-file.ts'
import { withFileLock } from './file-lock.ts'

/**
 * A drill as stored: what the API shows, plus what a crash must know to clean up. `scratch` lists every database
 * the drill may have made on its server (the drill's own and the restore's scratch name), each written here
 * before it is created; the names carry the drill's id, so nobody else's database is ever under one of them.
 */
export interface DrillRecord extends Drill {
  ownerPid?: number
  /** the host ownerPid is on: another host's pid says nothing about the drill (a shared catalog) */
  ownerHost?: string
  /** with a shared catalog: the instance running it, alive while its heartbeat is */
  instance?: string
  scratch: string[]
  /** scratch databases a dead drill left that could not be dropped yet (server unreachable): tried at the next start */
  leftovers?: string[]
}

interface DrillFile { version: 1, drills: DrillRecord[] }

/** History kept: the newest ended drills, whatever their age; running ones always. */
const KEEP_ENDED_MAX = 500

/** Drops the ended drills beyond the newest KEEP_ENDED_MAX (those with scratch databases left to drop are kept). */
export function pruneEnded (records: Map<string, DrillRecord>): void {
  const ended = [...records.values()].filter(r => r.status !== 'running' && !r.leftovers?.length)
    .sort((a, b) => b.startedAt.localeCompare(a.startedAt))
  ended.slice(KEEP_ENDED_MAX).forEach(r => records.delete(r.id))
}

/**
 * Where drills are recorded: `.pgkeep/drills.json` (DrillRecords, below) or the PostgreSQL catalog
 * (catalog/pg-drill-records.ts). update's fn sees every record, re-read under the store's lock.
 */
export interface DrillStore {
  all (): Promise<DrillRecord[]>
  get (id: string): Promise<DrillRecord | undefined>
  update (fn: (records: Map<string, DrillRecord>) => void): Promise<void>
  put (record: DrillRecord): Promise<void>
}

/** `<backupDir>/.pgkeep/drills.json`: the drill history, written atomically under its own inter-process lock. */
export class DrillRecords implements DrillStore {
  readonly path: string
  private readonly lockPath: string

  constructor (backupDir: string) {
    this.path = join(backupDir, '.pgkeep', 'drills.json')
    this.lockPath = join(backupDir, '.pgkeep', 'drills.lock')
  }

  async all (): Promise<DrillRecord[]> {
    try {
      const parsed = JSON.parse(await readFile(this.path, 'utf8')) as Partial<DrillFile>
      return Array.isArray(parsed.drills) ? parsed.drills : []
    } catch (err) {
      // a missing file is no drill yet; a corrupt one is started afresh (its scratch databases are all named
      // pgkeep_drill_*, which the docs tell an admin to look for)
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return []
      throw err
    }
  }

  async get (id: string): Promise<DrillRecord | undefined> {
    return (await this.all()).find(d => d.id === id)
  }

  /** Applies fn to the records re-read under the lock and writes the result. */
  async update (fn: (records: Map<string, DrillRecord>) => void): Promise<void> {
    await mkdir(join(this.path, '..'), { recursive: true, mode: 0o700 })
    await withFileLock(this.lockPath, async () => {
      await removeStaleTempFiles(join(this.path, '..'), 'drills.json')
      const records = new Map((await this.all()).map(r => [r.id, r]))
      fn(records)
      pruneEnded(records)
      const file: DrillFile = { version: 1, drills: [...records.values()] }
      await writeFileAtomic(this.path, JSON.stringify(file, null, 2) + '\n')
    })
  }

  async put (record: DrillRecord): Promise<void> {
    await this.update(records => { records.set(record.id, record) })
  }
}

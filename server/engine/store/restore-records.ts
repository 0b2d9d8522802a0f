import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { RestoreMode, RestoreStatus } from '../../../schemas/restore.ts'
import { removeStaleTempFiles, writeFileAtomic } from './atomic-file.ts'
import { withFileLock } from './file-lock.ts'

/**
 * What pgkeep must know about a restore to clean up after a crash: which scratch database it was filling,
 * which name the replaced database had between the swap and its drop, and who ran it. Written before each
 * step that creates or renames a database, so no database pgkeep made is ever unknown to the file.
 */
export interface RestoreRecord {
  id: string
  backupId: string
  /** the configured target's name */
  target: string
  database: string
  mode: RestoreMode
  scratch?: string
  scratchOid?: number
  old?: string
  /** the replaced database's oid: only a database with this oid is ever dropped under `old` */
  existingOid?: number
  status: RestoreStatus
  error?: { code: string, message: string }
  ownerPid: number
  startedAt: string
  endedAt?: string
  /** databases a dead restore left that could not be dropped yet (target unreachable): tried again at the next start */
  leftovers?: string[]
}

interface RestoreFile { version: 1, restores: RestoreRecord[] }

// ended records are history kept for a while; the file stays small whatever the uptime
const KEEP_ENDED_MS = 7 * 24 * 3600_000
const KEEP_ENDED_MAX = 200

/** `<backupDir>/.pgkeep/restores.json`, written atomically under its own inter-process lock (server and CLI share it). */
export class RestoreRecords {
  readonly path: string
  private readonly lockPath: string

  constructor (backupDir: string) {
    this.path = join(backupDir, '.pgkeep', 'restores.json')
    this.lockPath = join(backupDir, '.pgkeep', 'restores.lock')
  }

  async all (): Promise<RestoreRecord[]> {
    try {
      const parsed = JSON.parse(await readFile(this.path, 'utf8')) as Partial<RestoreFile>
      return Array.isArray(parsed.restores) ? parsed.restores : []
    } catch (err) {
      // a missing file is no restore yet; a corrupt one cannot be trusted and is started afresh (what it
      // listed can be found by name: every database pgkeep makes is called <db>__pgkeep_*)
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return []
      throw err
    }
  }

  /** Applies fn to the records re-read under the lock and writes the result. */
  async update (fn: (records: Map<string, RestoreRecord>) => void): Promise<void> {
    await mkdir(join(this.path, '..'), { recursive: true, mode: 0o700 })
    await withFileLock(this.lockPath, async () => {
      await removeStaleTempFiles(join(this.path, '..'), 'restores.json')
      const records = new Map((await this.all()).map(r => [r.id, r]))
      fn(records)
      const now = Date.now()
      const ended = [...records.values()].filter(r => r.status !== 'running' && !r.leftovers?.length)
        .sort((a, b) => Date.parse(b.endedAt ?? b.startedAt) - Date.parse(a.endedAt ?? a.startedAt))
      ended.forEach((r, i) => { if (i >= KEEP_ENDED_MAX || now - Date.parse(r.endedAt ?? r.startedAt) > KEEP_ENDED_MS) records.delete(r.id) })
      const file: RestoreFile = { version: 1, restores: [...records.values()] }
      await writeFileAtomic(this.path, JSON.stringify(file, null, 2) + '\n')
    })
  }

  async put (record: RestoreRecord): Promise<void> {
    await this.update(records => { records.set(record.id, record) })
  }
}

import { open, readFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { AuditEntry, AuditPage } from '../../schemas/audit.ts'
import { ensurePrivateDir } from '../auth/secure-file.ts'

/**
 * The audit log, wherever it is kept: the JSONL file (AuditLog) or the shared catalog (PgAuditLog). Entries come
 * back newest first, in the order they were appended.
 */
export interface AuditStore {
  append (entry: Omit<AuditEntry, 'time'> & { time?: string }): Promise<void>
  page (page?: number, pageSize?: number): Promise<AuditPage>
  /** Waits for every append in flight (and makes them durable). */
  flush (): Promise<void>
  close (): Promise<void>
}

/**
 * `<backupDir>/.pgkeep/audit.jsonl` (0600): one JSON object per line, each appended with a single write on an
 * O_APPEND descriptor so lines from the server and the CLI never interleave.
 */
export class AuditLog implements AuditStore {
  readonly path: string
  #fh?: Promise<FileHandle>
  #pending = new Set<Promise<unknown>>()

  constructor (backupDir: string) {
    this.path = join(backupDir, '.pgkeep', 'audit.jsonl')
  }

  #handle (): Promise<FileHandle> {
    this.#fh ??= (async () => {
      await ensurePrivateDir(join(this.path, '..'))
      return await open(this.path, 'a', 0o600)
    })()
    return this.#fh
  }

  async append (entry: Omit<AuditEntry, 'time'> & { time?: string }): Promise<void> {
    const line = auditLine(entry)
    await tracked(this.#pending, (async () => {
      const fh = await this.#handle()
      await fh.write(JSON.stringify(line) + '\n')
    })())
  }

  /** Newest first. A torn last line (crash mid-write) is skipped rather than failing the page. */
  async page (page = 1, pageSize = 50): Promise<AuditPage> {
    await this.flush()
    let raw = ''
    try {
      raw = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    const entries: AuditEntry[] = []
    for (const line of raw.split('\n')) {
      if (!line) continue
      try { entries.push(JSON.parse(line) as AuditEntry) } catch { /* torn line */ }
    }
    entries.reverse()
    const start = (page - 1) * pageSize
    return { items: entries.slice(start, start + pageSize), total: entries.length, page, pageSize }
  }

  /** Waits for every append in flight and fsyncs. */
  async flush (): Promise<void> {
    await Promise.allSettled([...this.#pending])
    if (this.#fh) await (await this.#fh).sync()
  }

  async close (): Promise<void> {
    await this.flush()
    const fh = this.#fh
    this.#fh = undefined
    if (fh) await (await fh).close()
  }
}

/** An entry as both logs keep it: its time (now unless given), no undefined fields. */
export function auditLine (entry: Omit<AuditEntry, 'time'> & { time?: string }): AuditEntry {
  return { time: entry.time ?? new Date().toISOString(), ...stripUndefined(entry) } as AuditEntry
}

/** Awaits write, listed in pending meanwhile, so flush() can wait for every append in flight. */
export async function tracked (pending: Set<Promise<unknown>>, write: Promise<unknown>): Promise<void> {
  pending.add(write)
  try {
    await write
  } finally {
    pending.delete(write)
  }
}

export function stripUndefined<T extends object> (o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

import { randomBytes } from 'node:crypto'
import { mkdir, readFile, readdir, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../store/atomic-file.ts'

/** One multipart upload this host started and has not yet completed or aborted. */
export interface JournaledUpload {
  storage: string
  key: string
  uploadId: string
  pid: number
  startedAt: string
}

const ENTRY = /^upload-[0-9a-f]{16}\.json$/

/**
 * Upload ids written down locally the moment the store hands them out (`<backupDir>/.pgkeep/uploads/`), so a
 * crash cannot leave a multipart upload nobody knows about: its parts cost money on most stores, and not every
 * store can list open uploads (s3rver, some gateways). One small file per upload, written atomically.
 */
export class UploadJournal {
  readonly dir: string

  constructor (dir: string) { this.dir = dir }

  /** Returns the entry's path, to hand back to `remove`. */
  async record (entry: Omit<JournaledUpload, 'pid' | 'startedAt'>): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    const path = join(this.dir, `upload-${randomBytes(8).toString('hex')}.json`)
    const full: JournaledUpload = { ...entry, pid: process.pid, startedAt: new Date().toISOString() }
    await writeFileAtomic(path, JSON.stringify(full) + '\n', 0o600)
    return path
  }

  async remove (path: string): Promise<void> {
    await unlink(path).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
  }

  /** Entries of one storage url, with the path of each; unreadable files (a torn write cannot happen) are skipped. */
  async list (storage: string): Promise<Array<JournaledUpload & { path: string }>> {
    let names: string[]
    try { names = await readdir(this.dir) } catch { return [] }
    const out: Array<JournaledUpload & { path: string }> = []
    for (const name of names.filter(n => ENTRY.test(n)).sort()) {
      const path = join(this.dir, name)
      try {
        const entry = JSON.parse(await readFile(path, 'utf8')) as JournaledUpload
        if (entry.storage === storage && typeof entry.key === 'string' && typeof entry.uploadId === 'string') out.push({ ...entry, path })
      } catch { /* removed meanwhile by another process's abort */ }
    }
    return out
  }
}

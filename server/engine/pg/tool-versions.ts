import { statSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { removeStaleTempFiles, writeFileAtomic } from '../store/atomic-file.ts'

export interface ToolVersion { version: string, major: number }

interface CacheFile { version: 1, tools: Record<string, { stamp: string, version: string, major: number }> }

/** Where a backups dir keeps the versions its pgkeep processes asked the client tools for. */
export function toolVersionsFile (backupDir: string): string {
  return join(backupDir, '.pgkeep', 'tool-versions.json')
}

/**
 * The file as it is now: a replaced or upgraded binary (apt installs a new file; a copy over it changes its size,
 * mtime or ctime) no longer matches its stamp, so it is asked again. undefined when the file is gone.
 */
function stampOf (path: string): string | undefined {
  try {
    const st = statSync(path)
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`
  } catch {
    return undefined
  }
}

/**
 * `--version` answers kept between runs. Each CLI command is a new process, and exec'ing pg_dump only to read its
 * version costs it 10-30 ms (libpq and OpenSSL are loaded and linked): asked once per binary instead. A cache, not
 * a record: unreadable means empty, and it is written without fsync (a lost entry costs one probe).
 */
export class ToolVersionCache {
  private changed = false

  private constructor (private readonly file: string, private readonly entries: CacheFile['tools']) {}

  static async load (file: string): Promise<ToolVersionCache> {
    try {
      const doc = JSON.parse(await readFile(file, 'utf8')) as Partial<CacheFile>
      if (doc.version === 1 && typeof doc.tools === 'object' && doc.tools !== null) return new ToolVersionCache(file, doc.tools)
    } catch {
      // missing or damaged: every tool is asked again
    }
    return new ToolVersionCache(file, {})
  }

  get (path: string): ToolVersion | undefined {
    const entry = this.entries[path]
    if (entry === undefined || typeof entry.version !== 'string' || !Number.isInteger(entry.major)) return undefined
    return entry.stamp === stampOf(path) ? { version: entry.version, major: entry.major } : undefined
  }

  set (path: string, v: ToolVersion): void {
    const stamp = stampOf(path)
    if (stamp === undefined) return
    this.entries[path] = { stamp, version: v.version, major: v.major }
    this.changed = true
  }

  /** Writes what was learned (nothing when nothing was); a failure only means the next run asks again. */
  async save (): Promise<void> {
    if (!this.changed) return
    this.changed = false
    try {
      await mkdir(dirname(this.file), { recursive: true, mode: 0o700 })
      await removeStaleTempFiles(dirname(this.file), 'tool-versions.json')
      await writeFileAtomic(this.file, `${JSON.stringify({ version: 1, tools: this.entries } satisfies CacheFile, null, 2)}\n`, 0o600, { durable: false })
    } catch {
      // a read-only backups dir: the tools are asked each time, as before
    }
  }
}

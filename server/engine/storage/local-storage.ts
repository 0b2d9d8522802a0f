import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { link, lstat, open, readFile, readdir, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Readable } from 'node:stream'
import { IntegrityError, NotFoundError, PgkeepError, toPgkeepError } from '../../errors.ts'
import { writeFileAtomic } from '../store/atomic-file.ts'
import type { ByteRange, ObjectInfo, ObjectWriter, Storage, UnfinishedWrite } from './storage.ts'

const PARTIAL = '.partial'

async function fsyncPath (path: string): Promise<void> {
  const fh = await open(path, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

async function exists (path: string): Promise<boolean> {
  try { await lstat(path); return true } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

/**
 * Renames a finished `.partial` into place and makes the rename durable. A file goes through link + unlink
 * because link fails atomically when the name is taken (rename would replace it); a directory can only be
 * checked first, so two racing jobs with one name are left to the caller.
 */
export async function commitLocalPartial (partialPath: string, finalPath: string): Promise<void> {
  const conflict = (): PgkeepError => new PgkeepError('CONFLICT', `a backup named ${finalPath.split(sep).at(-1)} already exists`)
  try {
    const st = await lstat(partialPath)
    if (st.isDirectory()) {
      if (await exists(finalPath)) throw conflict()
      await rename(partialPath, finalPath)
    } else {
      try {
        await link(partialPath, finalPath)
        await unlink(partialPath)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EEXIST') throw conflict()
        // filesystems without hard links (some FUSE/SMB mounts): check, then rename
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err
        if (await exists(finalPath)) throw conflict()
        await rename(partialPath, finalPath)
      }
    }
    await fsyncPath(dirname(finalPath))
    if (dirname(partialPath) !== dirname(finalPath)) await fsyncPath(dirname(partialPath))
  } catch (err) {
    throw toPgkeepError(err)
  }
}

function storageError (err: unknown, what: string): PgkeepError {
  const code = (err as NodeJS.ErrnoException)?.code
  if (code === 'ENOENT' || code === 'ENOTDIR') return new PgkeepError('STORAGE_NOT_FOUND', `${what}: the backups directory does not exist`, { cause: err })
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return new PgkeepError('STORAGE_AUTH_FAILED', `${what}: pgkeep may not write there (${code})`, { cause: err })
  return toPgkeepError(err)
}

/** The backups directory as a Storage: keys are paths under it, unfinished writes are `<key>.partial`. */
export class LocalStorage implements Storage {
  readonly kind = 'local' as const
  readonly url: string
  readonly root: string

  constructor (dir: string) {
    this.root = resolve(dir)
    this.url = pathToFileURL(this.root).href
  }

  /** A key is a relative path that stays inside the root: anything else is a bug or a tampered manifest. */
  localPath = (key: string): string => {
    const n = normalize(key)
    if (key === '' || isAbsolute(key) || key.includes('\0') || n === '..' || n.startsWith(`..${sep}`)) throw new IntegrityError(`names a file outside the backups dir: ${key}`)
    return join(this.root, n)
  }

  async createWriter (key: string): Promise<ObjectWriter> {
    const partial = this.localPath(key) + PARTIAL
    const final = this.localPath(key)
    // 'wx': a leftover file with this name is a bug somewhere else, never something to overwrite
    const stream = createWriteStream(partial, { flags: 'wx', mode: 0o640 })
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve())
      stream.once('error', (err: NodeJS.ErrnoException) => {
        reject(err.code === 'EEXIST' ? new PgkeepError('CONFLICT', `${partial} already exists`, { cause: err }) : storageError(err, this.url))
      })
    })
    return {
      stream,
      direct: { fd: (stream as unknown as { fd: number }).fd, path: partial },
      commit: async ({ sizeBytes }) => {
        try {
          await fsyncPath(partial)
          const onDisk = (await stat(partial)).size
          if (onDisk !== sizeBytes) throw new IntegrityError(`wrote ${sizeBytes} bytes but ${onDisk} are on disk`)
        } catch (err) {
          await rm(partial, { force: true })
          throw toPgkeepError(err)
        }
        await commitLocalPartial(partial, final)
      },
      abort: async () => {
        stream.destroy()
        await rm(partial, { recursive: true, force: true })
      },
    }
  }

  /** A missing key in a missing directory is a missing store (STORAGE_NOT_FOUND), not a missing backup. */
  private async missing (key: string, err: unknown): Promise<PgkeepError> {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return toPgkeepError(err)
    if (!(await stat(this.root).catch(() => undefined))?.isDirectory()) return storageError(err, this.url)
    return new NotFoundError(`${key} in ${this.url}`)
  }

  async read (key: string, range?: ByteRange): Promise<Readable> {
    const fh = await this.openLocal(key)
    return fh.createReadStream({ highWaterMark: 1024 * 1024, ...(range ? { start: range.start, end: range.end } : {}) })
  }

  openLocal = async (key: string): Promise<FileHandle> => {
    try {
      return await open(this.localPath(key), 'r')
    } catch (err) {
      throw await this.missing(key, err)
    }
  }

  async stat (key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await stat(this.localPath(key))
      if (st.isDirectory()) return { key, sizeBytes: 0, isDirectory: true }
      return st.isFile() ? { key, sizeBytes: st.size } : undefined
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
      throw toPgkeepError(err)
    }
  }

  /** Top-level entries only: a directory-format backup is one entry (isDirectory), as it is one backup. */
  async list (prefix = ''): Promise<ObjectInfo[]> {
    let names: string[]
    try { names = await readdir(this.root) } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw toPgkeepError(err)
    }
    const out: ObjectInfo[] = []
    for (const name of names.sort()) {
      if (name.startsWith('.') || name.endsWith(PARTIAL) || !name.startsWith(prefix)) continue
      const info = await this.stat(name)
      if (info) out.push(info)
    }
    return out
  }

  async delete (key: string): Promise<void> {
    await rm(this.localPath(key), { recursive: true, force: true })
  }

  async writeText (key: string, text: string): Promise<void> {
    await writeFileAtomic(this.localPath(key), text, 0o640)
  }

  async readText (key: string): Promise<string> {
    try {
      return await readFile(this.localPath(key), 'utf8')
    } catch (err) {
      throw await this.missing(key, err)
    }
  }

  async listUnfinished (): Promise<UnfinishedWrite[]> {
    let names: string[]
    try { names = await readdir(this.root) } catch { return [] }
    return names.filter(n => n.endsWith(PARTIAL) && !n.startsWith('.')).sort().map(n => ({ key: n.slice(0, -PARTIAL.length) }))
  }

  async abortUnfinished (write: UnfinishedWrite): Promise<void> {
    await rm(this.localPath(write.key) + PARTIAL, { recursive: true, force: true })
  }

  async probe (): Promise<void> {
    const probe = join(this.root, `.pgkeep-probe-${process.pid}-${randomBytes(4).toString('hex')}`)
    try {
      await writeFile(probe, 'pgkeep write probe\n', { flag: 'wx' })
      await unlink(probe)
    } catch (err) {
      await unlink(probe).catch(() => {})
      throw storageError(err, this.url)
    }
  }
}

import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readFile, rename } from 'node:fs/promises'
import { dirname } from 'node:path'

/** `<backupDir>/.pgkeep`: users, tokens, audit log and generated secrets, none readable by others. */
export async function ensurePrivateDir (dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
}

/** Reads a JSON file; undefined when it does not exist yet. */
export async function readJson<T> (path: string): Promise<T | undefined> {
  let raw: string
  try {
    raw = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  return JSON.parse(raw) as T
}

/**
 * temp -> fsync -> rename, created 0600 from the first byte, so a crash leaves the old file or the new one
 * and a secret is never briefly world-readable.
 */
export async function writeJsonAtomic (path: string, value: unknown): Promise<void> {
  await ensurePrivateDir(dirname(path))
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const fh = await open(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(JSON.stringify(value, null, 2) + '\n')
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
  await chmod(path, 0o600)
}

/** Serializes read-modify-write cycles inside this process. */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve()
  run<T> (fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn)
    this.#tail = next.catch(() => {})
    return next
  }
}

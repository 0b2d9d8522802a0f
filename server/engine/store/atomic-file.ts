import { randomBytes } from 'node:crypto'
import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { isProcessAlive } from './file-lock.ts'

/** Makes a rename (or create/unlink) inside dir durable: without it a power cut can undo the rename. */
export async function fsyncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

// ".<target>.<pid>.<random>.tmp": hidden, tied to the writer's pid so leftovers of a crashed writer can be told apart.
const TEMP_RE = /^\.(.+)\.(\d+)\.[0-9a-f]{12}\.tmp$/

function tempPathFor (path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
}

/**
 * Readers see either the old content or the new one, never a truncated file: temp (same dir, unique
 * name) -> write -> fsync -> rename -> fsync dir. The temp file is removed when anything fails.
 * `durable: false` leaves out both fsyncs, for a cache whose loss after a power cut costs nothing but work.
 */
export async function writeFileAtomic (path: string, data: string | Buffer, mode = 0o600, opts: { durable?: boolean } = {}): Promise<void> {
  const durable = opts.durable ?? true
  const tmp = tempPathFor(path)
  let fh: FileHandle | undefined
  try {
    fh = await open(tmp, 'wx', mode)
    // open()'s mode goes through the umask; the caller asked for exactly this one.
    await fh.chmod(mode)
    await fh.writeFile(data)
    if (durable) await fh.sync()
    await fh.close()
    fh = undefined
    await rename(tmp, path)
  } catch (err) {
    await fh?.close().catch(() => {})
    await unlink(tmp).catch(() => {})
    throw err
  }
  if (durable) await fsyncDir(dirname(path))
}

/**
 * Removes temp files that writeFileAtomic left behind when its process was killed mid-write
 * (only those of dead processes: a live writer's temp is about to be renamed). Returns their names.
 */
export async function removeStaleTempFiles (dir: string, forName?: string): Promise<string[]> {
  let names: string[]
  try { names = await readdir(dir) } catch { return [] }
  const removed: string[] = []
  for (const name of names) {
    const m = TEMP_RE.exec(name)
    if (!m || (forName !== undefined && m[1] !== forName)) continue
    const pid = Number(m[2])
    // Our own pid may be a live write in this very process: leave it.
    if (pid === process.pid || isProcessAlive(pid)) continue
    try {
      await unlink(join(dir, name))
      removed.push(name)
    } catch { /* already gone: another process cleaned it */ }
  }
  return removed
}

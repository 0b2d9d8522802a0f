import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { open, readFile, stat, unlink } from 'node:fs/promises'
import { resolve } from 'node:path'
import { PgkeepError } from '../../errors.ts'

/** true when a process with this pid exists (EPERM: it exists but belongs to another user). */
export function isProcessAlive (pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Linux start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat); undefined elsewhere. */
export function processStartTicks (pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[19])
    return Number.isFinite(ticks) ? ticks : undefined
  } catch {
    return undefined
  }
}

let bootTimeMs: number | undefined
/** When a process started, as wall-clock ms; undefined when the platform does not tell. */
export function processStartedAtMs (pid: number): number | undefined {
  if (pid === process.pid) return performance.timeOrigin
  const ticks = processStartTicks(pid)
  if (ticks === undefined) return undefined
  if (bootTimeMs === undefined) {
    try {
      const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))
      if (!m) return undefined
      bootTimeMs = Number(m[1]) * 1000
    } catch {
      return undefined
    }
  }
  // USER_HZ is 100 on every Linux architecture node runs on.
  return bootTimeMs + ticks * 10
}

/** Locks this process holds right now, by path -> token: a lock file naming our pid but not listed here is a previous life's. */
const held = new Map<string, string>()

// /proc start times are whole seconds since boot: allow for that rounding
const START_TIME_SLACK_MS = 5000

/**
 * Whether pid is still the process that recorded something at `recordedAt` (ms). A pid alone is not enough:
 * after a crash it may belong to someone else (in a container pgkeep is pid 1 on every start, so our own pid
 * may be a previous life's). The owner started before it recorded, so a process that started later is an
 * impostor. Our own start time is exact (performance.timeOrigin), others' whole seconds.
 */
export function pidStillOwns (pid: number | undefined, recordedAt: number): boolean {
  if (pid === undefined || !isProcessAlive(pid)) return false
  const started = processStartedAtMs(pid)
  if (started === undefined || Number.isNaN(recordedAt)) return true
  return started <= recordedAt + (pid === process.pid ? 1 : START_TIME_SLACK_MS)
}

interface LockContent { pid: number, startTicks?: number, token?: string }

function parseLock (text: string): LockContent | undefined {
  const m = /^(\d+)(?: (\d+|-))?(?: ([0-9a-f]+))?\n?$/.exec(text)
  if (!m) return undefined
  return { pid: Number(m[1]), startTicks: m[2] && m[2] !== '-' ? Number(m[2]) : undefined, token: m[3] }
}

// An empty or unreadable lock file is normal for the instant between O_EXCL create and write; only older ones are debris.
const GARBAGE_GRACE_MS = 3000

async function isStale (lockPath: string, text: string): Promise<boolean> {
  const lock = parseLock(text)
  if (!lock) {
    try {
      return Date.now() - (await stat(lockPath)).mtimeMs > GARBAGE_GRACE_MS
    } catch {
      return false
    }
  }
  if (lock.pid === process.pid) return held.get(lockPath) !== lock.token
  if (!isProcessAlive(lock.pid)) return true
  // The pid is alive, but a different start time means the holder died and its pid was reused.
  if (lock.startTicks !== undefined) {
    const now = processStartTicks(lock.pid)
    if (now !== undefined && now !== lock.startTicks) return true
  }
  return false
}

async function readText (path: string): Promise<string | undefined> {
  try { return await readFile(path, 'utf8') } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * Breaking a stale lock is itself serialized (by a tiny ".break" lock) so that two waiters that both
 * judged it stale cannot end with one of them unlinking the fresh lock the other just created.
 */
async function breakStaleLock (lockPath: string, staleText: string): Promise<boolean> {
  const breakPath = `${lockPath}.break`
  try {
    const fh = await open(breakPath, 'wx', 0o600)
    await fh.close()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    // A breaker that died between its create and unlink: the break lock is held for microseconds otherwise.
    try {
      if (Date.now() - (await stat(breakPath)).mtimeMs > GARBAGE_GRACE_MS) await unlink(breakPath)
    } catch { /* gone meanwhile */ }
    return false
  }
  try {
    if ((await readText(lockPath)) === staleText) await unlink(lockPath).catch(() => {})
  } finally {
    await unlink(breakPath).catch(() => {})
  }
  return true
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

let ownStartTicks: number | '-' | undefined

async function acquire (lockPath: string, timeoutMs: number): Promise<string> {
  const token = randomBytes(8).toString('hex')
  ownStartTicks ??= processStartTicks(process.pid) ?? '-'
  const content = `${process.pid} ${ownStartTicks} ${token}\n`
  const deadline = Date.now() + timeoutMs
  let delay = 2
  let holder = ''
  for (;;) {
    try {
      const fh = await open(lockPath, 'wx', 0o600)
      // Registered before the write so a waiter in this same process never mistakes our fresh lock for a previous life's.
      held.set(lockPath, token)
      try {
        await fh.writeFile(content)
      } catch (err) {
        held.delete(lockPath)
        await unlink(lockPath).catch(() => {})
        throw err
      } finally {
        await fh.close()
      }
      return token
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const text = await readText(lockPath)
    if (text === undefined) continue
    const stale = await isStale(lockPath, text)
    // Broken: retry at once. Someone else is breaking it: back off like any waiter.
    if (stale && await breakStaleLock(lockPath, text)) continue
    holder = parseLock(text)?.pid.toString() ?? 'unknown'
    if (Date.now() >= deadline) {
      throw new PgkeepError('INTERNAL',
        `registry is locked by pid ${holder} (lock file ${lockPath}); if that process is not pgkeep, remove the lock file`,
        { details: { lockPath, pid: holder } })
    }
    await sleep(Math.min(delay, Math.max(1, deadline - Date.now())))
    delay = Math.min(delay * 2, 50)
  }
}

async function release (lockPath: string, token: string): Promise<void> {
  // Still listed as ours until the file is gone: a waiter in this process that read it meanwhile would otherwise
  // judge it a previous life's, break it and take the lock, and our unlink below would then remove its fresh
  // lock, letting a third writer in beside it (lost registry updates between two views of one process).
  try {
    const text = await readText(lockPath)
    // Never remove a lock we no longer own (someone judged ours stale and took over).
    if (text !== undefined && parseLock(text)?.token === token) await unlink(lockPath).catch(() => {})
  } finally {
    if (held.get(lockPath) === token) held.delete(lockPath)
  }
}

/**
 * Inter-process mutual exclusion through a lock file holding "pid starttime token". Stale when that pid is
 * dead or reused, or when the file is garbage and older than a few seconds; waiters back off up to timeoutMs.
 * Not reentrant: a nested call on the same path from the same chain waits for itself until timeout.
 */
export async function withFileLock<T> (path: string, fn: () => Promise<T>, opts?: { timeoutMs?: number }): Promise<T> {
  const lockPath = resolve(path)
  const token = await acquire(lockPath, opts?.timeoutMs ?? 15000)
  try {
    return await fn()
  } finally {
    await release(lockPath, token)
  }
}

import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Backup, BackupStatus } from '../../../schemas/backup.ts'
import { removeOrphanedPassfiles } from '../pg/passfile.ts'
import { pidStillOwns } from './file-lock.ts'
import { manifestPath } from './manifest.ts'
import type { Registry } from './registry.ts'

const IN_FLIGHT: readonly BackupStatus[] = ['queued', 'running', 'verifying']

/** Whether the process named by ownerPid is still the one that owns this job (not a later one with its pid). */
export function isOwnerAlive (backup: Backup): boolean {
  // startedAt is written by the process that runs the job, createdAt by the one that queued it (the same one
  // today); the later of the two is the most lenient bound that still unmasks a reused pid.
  return pidStillOwns(backup.ownerPid, Date.parse(backup.startedAt ?? backup.createdAt))
}

export const INTERRUPTED_MESSAGE = 'pgkeep stopped while this backup was running; the partial file was removed'

/**
 * Start-up repair after a crash, all of it: jobs whose owner is gone become failed/INTERRUPTED, whatever they
 * had written is removed (a job can die after its rename but before "completed": those files are not a finished
 * backup), and so is every `*.partial` file or directory that no live job (of this or another process sharing
 * the dir) owns, and every passfile directory whose process is gone (it holds a password in plain text).
 * Nothing to repair means nothing written, not even the lock: a read-only backups dir can still be listed.
 */
export async function recoverInterrupted (registry: Registry, backupDir: string): Promise<{ interrupted: Backup[], removedPartials: string[], removedPassfiles: string[] }> {
  const removedPassfiles = await removeOrphanedPassfiles(backupDir)
  const interrupted: Backup[] = []
  const needsRepair = registry.all().some(b => IN_FLIGHT.includes(b.status) && !isOwnerAlive(b))
  if (needsRepair) await registry.update(all => {
    const finishedAt = new Date().toISOString()
    for (const b of all.values()) {
      if (!IN_FLIGHT.includes(b.status) || isOwnerAlive(b)) continue
      const failed: Backup = { ...b, status: 'failed', finishedAt, error: { code: 'INTERRUPTED', message: INTERRUPTED_MESSAGE } }
      delete failed.ownerPid
      all.set(b.id, failed)
      interrupted.push(failed)
    }
  })
  for (const b of interrupted) {
    await rm(join(backupDir, b.name), { recursive: true, force: true })
    await rm(manifestPath(backupDir, b.name), { force: true })
  }

  let names: string[]
  try { names = (await readdir(backupDir)).filter(n => n.endsWith('.partial')) } catch { names = [] }
  if (names.length === 0) return { interrupted, removedPartials: [], removedPassfiles }
  // Listing first, then reading the registry: a job records itself before creating its partial, so any
  // partial listed above whose job is live (even one another process just started) is known by now.
  await registry.reload()
  const live = registry.all().filter(b => IN_FLIGHT.includes(b.status) && isOwnerAlive(b))
  const removedPartials: string[] = []
  for (const name of names) {
    // A live job writes `<name>.partial` (possibly with extra suffixes): keep anything that starts with its name.
    if (live.some(b => name.startsWith(b.name))) continue
    await rm(join(backupDir, name), { recursive: true, force: true })
    removedPartials.push(name)
  }
  return { interrupted, removedPartials, removedPassfiles }
}

import type { Backup, BackupStatus } from '../../../schemas/backup.ts'
import { removeOrphanedPassfiles } from '../pg/passfile.ts'
import type { StorageSet } from '../storage/storage-set.ts'
import type { UnfinishedWrite } from '../storage/storage.ts'
import { deleteBackupFiles } from './manifest.ts'
import { pidStillOwns } from './file-lock.ts'
import type { Registry } from './registry.ts'

const IN_FLIGHT: readonly BackupStatus[] = ['queued', 'running', 'verifying']

/** Whether the process named by ownerPid is still the one that owns this job (not a later one with its pid). */
export function isOwnerAlive (backup: Backup): boolean {
  // startedAt is written by the process that runs the job, createdAt by the one that queued it (the same one
  // today); the later of the two is the most lenient bound that still unmasks a reused pid.
  return pidStillOwns(backup.ownerPid, Date.parse(backup.startedAt ?? backup.createdAt))
}

export const INTERRUPTED_MESSAGE = 'pgkeep stopped while this backup was running; the partial file was removed'

export interface RecoveryReport {
  interrupted: Backup[]
  /** unfinished writes aborted: `<key>.partial` locally, `<store>/<key> (multipart upload <id>)` in S3 */
  removedPartials: string[]
  removedPassfiles: string[]
  /** what could not be cleaned up now (a store out of reach), for the log; tried again at the next start */
  problems: string[]
}

/** How a removed leftover is named in the start-up log: the partial file, or the store and its upload. */
function leftoverName (storageUrl: string, kind: 'local' | 's3', w: UnfinishedWrite): string {
  return kind === 'local' ? `${w.key}.partial` : `${storageUrl}/${w.key} (multipart upload ${w.uploadId ?? '?'})`
}

/**
 * Start-up repair after a crash, all of it: jobs whose owner is gone become failed/INTERRUPTED, whatever they
 * had written is removed (a job can die after its data was published but before "completed": that is not a
 * finished backup), and so is every unfinished write (a `*.partial` file or directory, an S3 multipart upload)
 * in every configured store that no live job (of this or another process sharing the dir) owns, and every
 * passfile directory whose process is gone (it holds a password in plain text).
 * Nothing to repair means nothing written, not even the lock: a read-only backups dir can still be listed.
 */
export async function recoverInterrupted (registry: Registry, backupDir: string, stores: StorageSet, opts: { byLease?: boolean } = {}): Promise<RecoveryReport> {
  // With the shared catalog a job's owner may be on another host: its pid says nothing here. Leases judge it
  // (engine/shared-jobs.ts), and every job in flight counts as live for the leftovers below.
  const isLive = opts.byLease === true ? () => true : isOwnerAlive
  const problems: string[] = []
  // a store that cannot be reached now must not stop pgkeep from starting: its leftovers wait for the next start
  const tryOn = async <T>(storage: { url: string }, what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try { return await fn() } catch (err) { problems.push(`${what} in ${storage.url}: ${(err as Error).message}`); return undefined }
  }
  const removedPassfiles = await removeOrphanedPassfiles(backupDir)
  const interrupted: Backup[] = []
  const needsRepair = registry.all().some(b => IN_FLIGHT.includes(b.status) && !isLive(b))
  if (needsRepair) await registry.update(all => {
    const finishedAt = new Date().toISOString()
    for (const b of all.values()) {
      if (!IN_FLIGHT.includes(b.status) || isLive(b)) continue
      const failed: Backup = { ...b, status: 'failed', finishedAt, error: { code: 'INTERRUPTED', message: INTERRUPTED_MESSAGE } }
      delete failed.ownerPid
      all.set(b.id, failed)
      interrupted.push(failed)
    }
  })
  for (const b of interrupted) {
    for (const storage of new Set([stores.of(b), ...stores.destinations()])) {
      await tryOn(storage, `removing what the interrupted backup ${b.name} wrote`, async () => { await deleteBackupFiles(storage, b.name) })
    }
  }

  const unfinished: Array<{ storage: ReturnType<StorageSet['configured']>[number], write: UnfinishedWrite }> = []
  for (const storage of stores.configured()) {
    for (const write of await tryOn(storage, 'listing unfinished writes', () => storage.listUnfinished()) ?? []) unfinished.push({ storage, write })
  }
  if (unfinished.length === 0) return { interrupted, removedPartials: [], removedPassfiles, problems }
  // Listing first, then reading the registry: a job records itself before it starts writing, so any
  // unfinished write listed above whose job is live (even one another process just started) is known by now.
  await registry.reload()
  const live = registry.all().filter(b => IN_FLIGHT.includes(b.status) && isLive(b))
  const removedPartials: string[] = []
  for (const { storage, write } of unfinished) {
    // A live job writes `<name>` (a local partial may carry extra suffixes): keep anything that starts with its name.
    if (live.some(b => write.key.startsWith(b.name))) continue
    const name = leftoverName(storage.url, storage.kind, write)
    if (await tryOn(storage, `aborting ${name}`, async () => { await storage.abortUnfinished(write); return true })) removedPartials.push(name)
  }
  return { interrupted, removedPartials, removedPassfiles, problems }
}
